package portal

import (
	"context"
	"strings"

	"github.com/authsession/caddy-authsession/state"
)

// linkedAccount returns the user a verified email links to: the one
// users-file user whose mail it is (none when several have it), else the
// user the identity stores find under the address (a directory whose
// user_filter matches mail finds them) when their mail is that address,
// compared without regard to case and otherwise exactly. A store that
// cannot answer is an error, never "nobody".
func (p *Portal) linkedAccount(ctx context.Context, mail string) (state.User, bool, error) {
	if u, n := fileUsersWithMail(p.Users, mail); n == 1 {
		return u, true, nil
	} else if n > 1 {
		return state.User{}, false, nil
	}
	if p.Users == nil || state.ValidateUserName(mail) != nil {
		return state.User{}, false, nil
	}
	u, ok, err := p.Users.Lookup(ctx, mail)
	if err != nil {
		return state.User{}, false, err
	}
	if !ok || u.Mail == "" || !strings.EqualFold(u.Mail, mail) {
		return state.User{}, false, nil
	}
	return u, true, nil
}

// fileUsersWithMail returns how many users-file users have mail (case
// does not matter) and, when there is one, that user.
func fileUsersWithMail(d state.Directory, mail string) (state.User, int) {
	us := state.UsersFileOf(d)
	if us == nil {
		return state.User{}, 0
	}
	var found state.User
	n := 0
	for _, u := range us.All() {
		if u.Mail != "" && strings.EqualFold(u.Mail, mail) {
			found = u
			n++
		}
	}
	return found, n
}
