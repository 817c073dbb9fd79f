package handlers

import (
	"context"

	"github.com/authsession/caddy-authsession/state"
)

// raUser resolves a create request's user through the identity stores: the
// canonical key of raw (see state.DirectoryKey) and, when a store knows the
// user, that user (known true). Their loginName, groupName and idStoreName
// then come from the store, as in the other families; a user no store
// knows keeps the caller's. A store that cannot answer is a
// *DirectoryError; a name that cannot be a user's is state.ErrBadUserID.
func raUser(ctx context.Context, d state.Directory, raw string) (key string, u state.User, known bool, err error) {
	if err := state.ValidateUserName(raw); err != nil {
		return "", state.User{}, false, err
	}
	if d != nil {
		u, ok, err := memoDirectory(ctx, d).Lookup(ctx, raw)
		if err != nil {
			return "", state.User{}, false, directoryFault(err)
		}
		if ok {
			return u.ID, u, true, nil
		}
	}
	key, err = state.DirectoryKey(ctx, nil, raw)
	return key, state.User{}, false, err
}
