package handlers

import (
	"slices"
	"strings"

	"github.com/authsession/caddy-authsession/state"
)

// InGroups reports whether the session's user is in one of groups: its
// group (GroupName), or, for a session an OpenID Provider opened (attribute
// oidc_provider), one of the groups the provider gave it (the
// comma-separated "groups" attribute).
func InGroups(groups []string, s *state.Session) bool {
	if slices.Contains(groups, s.GroupName) {
		return true
	}
	if s.UserAttributes["oidc_provider"] == "" {
		return false
	}
	for g := range strings.SplitSeq(s.UserAttributes["groups"], ",") {
		if g != "" && slices.Contains(groups, g) {
			return true
		}
	}
	return false
}
