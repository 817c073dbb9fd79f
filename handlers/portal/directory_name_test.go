package portal

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// TestPortalGreetsWithTheDirectoryName: a directory user whose display
// name the directory gives (name cn) is greeted with it on the sessions,
// account and sign-out pages, their login beside it; the session carries
// it as the attribute "name".
func TestPortalGreetsWithTheDirectoryName(t *testing.T) {
	f := newPortalFixture(t, "")
	srv := ldaptest.Start(t, "")
	d, err := ldapdir.New(ldapdir.Config{
		Name: "corp", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.PeopleDN, Attributes: ldapdir.Attributes{Name: "cn"}, TLS: srv.TLSConfig(), Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	f.portal.Users = state.Directories{f.portal.Users, d}
	b := f.browser(t)
	b.get("/auth/login")
	resp := b.post("/auth/login", "login", "bob", "password", ldaptest.BobPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	b.get("/auth/otp?factor=email")
	resp = b.post("/auth/otp", "factor", "email", "code", f.mail.last(t).Code)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	s, err := f.store.Get(t.Context(), state.KeyOf(b.cookie()))
	if err != nil || s.UserID != "bob" || s.UserAttributes[state.NameAttribute] != "Bob Example" || !s.Authenticated(f.clk.Now()) {
		t.Fatalf("bob's session %+v, %v", s, err)
	}
	for _, page := range []string{"/auth/sessions", "/auth/account", "/auth/logout"} {
		wantStatus(t, b.get(page), http.StatusOK, b.page)
		if !strings.Contains(b.page, "<strong>Bob Example</strong> (bob)") {
			t.Errorf("%s does not greet bob by his name:\n%s", page, b.page)
		}
	}
}
