package handlers

import (
	"slices"
	"strings"

	"github.com/authsession/caddy-authsession/state"
)

// InGroups reports whether the session's user is in one of groups: its
// group (GroupName), or one of the groups an identity provider gave it
// (the comma-separated "groups" attribute of OpenID Connect sessions).
func InGroups(groups []string, s *state.Session) bool {
	if slices.Contains(groups, s.GroupName) {
		return true
	}
	for g := range strings.SplitSeq(s.UserAttributes["groups"], ",") {
		if g != "" && slices.Contains(groups, g) {
			return true
		}
	}
	return false
}
