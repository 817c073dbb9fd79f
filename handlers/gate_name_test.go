package handlers

import (
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

// TestGateNameHeader: an upstream header of the field "name" carries the
// session's display name, the login name when it has none, and never a
// client's forged value.
func TestGateNameHeader(t *testing.T) {
	if !ValidField("name") {
		t.Fatal(`"name" is not a valid upstream header field`)
	}
	f := newGate(t)
	f.gate.SetHeaders = append(f.gate.SetHeaders, HeaderField{Name: "X-Auth-Name", Field: "name"})
	for _, c := range []struct {
		name, want string
	}{{"Alice Smith", "Alice Smith"}, {"", "alice.smith"}} {
		id := f.session(state.StatusAuthenticated, func(s *state.Session) { s.SetDisplayName(c.name) })
		r := apiRequest("GET", "/app", id)
		r.Header.Set("X-Auth-Name", "Forged Admin")
		if o, _, _ := f.check(r); o != Pass {
			t.Fatalf("outcome %v", o)
		}
		if got := r.Header.Values("X-Auth-Name"); len(got) != 1 || got[0] != c.want {
			t.Errorf("display name %q: X-Auth-Name = %q, want [%q]", c.name, got, c.want)
		}
	}
}
