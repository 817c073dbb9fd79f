package handlers

import (
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

func TestInGroups(t *testing.T) {
	s := &state.Session{GroupName: "staff", UserAttributes: map[string]string{"oidc_provider": "corp", "groups": "dev,ops"}}
	for _, tt := range []struct {
		groups []string
		want   bool
	}{
		{[]string{"staff"}, true},
		{[]string{"ops"}, true},
		{[]string{"admins", "dev"}, true},
		{[]string{"admins"}, false},
		{[]string{"dev,ops"}, false},
		{[]string{""}, false},
	} {
		if got := InGroups(tt.groups, s); got != tt.want {
			t.Errorf("InGroups(%q) = %v, want %v", tt.groups, got, tt.want)
		}
	}
	if InGroups([]string{""}, &state.Session{GroupName: "x"}) {
		t.Error("an empty group matched")
	}
	// Only a provider's session has its groups read from the attribute.
	if InGroups([]string{"ops"}, &state.Session{GroupName: "x", UserAttributes: map[string]string{"groups": "ops"}}) {
		t.Error("the groups attribute of a session no provider opened counted")
	}
}
