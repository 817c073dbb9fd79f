package handlers

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// TestRiskAnalyzerDirectoryUser: the risk analyzer's create binds a user
// an identity store knows (a real slapd; its group from memberOf, filled
// by the memberof overlay) as the other families do: loginName, groupName
// and idStoreName come from the store, whatever the caller sent; a user no
// store knows keeps the caller's values; a directory that cannot answer is
// the family's 503 without a body, and nothing is created. The family's
// contract checker sees every answer.
func TestRiskAnalyzerDirectoryUser(t *testing.T) {
	f := newRA(t)
	srv := ldaptest.Start(t, "")
	d, err := ldapdir.New(ldapdir.Config{
		Name: "corp", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.PeopleDN, Attributes: ldapdir.Attributes{Group: "memberOf", Name: "cn"},
		TLS: srv.TLSConfig(), Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	f.ra.Env.Users = state.Directories{d}
	create := func(id, login, group, user string) (int, raUserData, string) {
		t.Helper()
		rec := f.do(t, "POST", RiskBase, "application/json", "",
			`{"requestId":"`+id+`","user":{"loginName":"`+login+`","groupName":"`+group+`","userId":"`+user+`"},"ip":{"ipAddress":"198.51.100.7"}}`)
		var body struct {
			UserData raUserData `json:"userData"`
		}
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("create %s: %v %s", id, err, rec.Body)
			}
		}
		return rec.Code, body.UserData, rec.Body.String()
	}

	// alice, typed another way, with the caller's own group: the store's.
	code, ud, body := create("ra-directory-alice-0000000000", "Alice.Typed", "CallerGroup", "ALICE")
	if code != http.StatusOK || ud.UserID != "alice" || ud.LoginName != "alice" || ud.GroupName != "ops" {
		t.Fatalf("alice: %d %+v %s", code, ud, body)
	}
	s := f.session(t, "ra-directory-alice-0000000000")
	if s.IDStoreName != "corp" || s.LoginName != "alice" || s.GroupName != "ops" || s.UserAttributes[state.NameAttribute] != "Alice Example" {
		t.Fatalf("alice's session %+v", s)
	}
	// bob is in no group: the store says so, the caller's group is not
	// taken for his.
	if code, ud, body := create("ra-directory-bob-00000000000000", "bob", "admins", "bob"); code != http.StatusOK || ud.GroupName != "" || ud.LoginName != "bob" {
		t.Fatalf("bob: %d %+v %s", code, ud, body)
	}
	// zed is nobody's: the caller's values, the default store.
	code, ud, body = create("ra-directory-zed-00000000000000", "Zed.Login", "Partners", "zed")
	if code != http.StatusOK || ud.UserID != "zed" || ud.LoginName != "Zed.Login" || ud.GroupName != "Partners" {
		t.Fatalf("zed: %d %+v %s", code, ud, body)
	}
	if s := f.session(t, "ra-directory-zed-00000000000000"); s.IDStoreName != "UserIdentityStore1" {
		t.Fatalf("zed's session %+v", s)
	}

	srv.Stop()
	code, _, body = create("ra-directory-down-0000000000000", "alice", "ops", "alice")
	if code != http.StatusServiceUnavailable || body != "" {
		t.Fatalf("directory down: %d %q; want 503 without a body", code, body)
	}
	if _, err := f.store.Get(t.Context(), state.KeyOf("ra-directory-down-0000000000000")); err == nil {
		t.Fatal("a session was created while the directory was down")
	}
}
