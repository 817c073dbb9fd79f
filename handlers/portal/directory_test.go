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

// TestPortalDirectoryDownAtTheSecondFactor: a directory user signed in
// with their password meets a directory gone away at the code page: 503
// pages, nothing counted as a wrong code; once it is back the code signs
// them in.
func TestPortalDirectoryDownAtTheSecondFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	srv := ldaptest.Start(t, "")
	d, err := ldapdir.New(ldapdir.Config{
		Name: "corp", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.PeopleDN, TLS: srv.TLSConfig(), Timeout: 2 * time.Second,
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
	if loc := resp.Header.Get("Location"); loc != "/auth/otp?factor=email" {
		t.Fatalf("after bob's password: %q", loc)
	}
	code := f.mail.last(t)
	if code.To != "bob@example.com" {
		t.Fatalf("the code went to %q", code.To)
	}
	s, err := f.store.Get(t.Context(), state.KeyOf(b.cookie()))
	if err != nil || s.UserID != "bob" || s.IDStoreName != "corp" {
		t.Fatalf("bob's session %+v, %v", s, err)
	}
	b.get("/auth/otp?factor=email")
	token := b.csrf()
	srv.Stop()
	resp = b.get("/auth/otp?factor=email")
	wantStatus(t, resp, http.StatusServiceUnavailable, b.page)
	resp = b.post("/auth/otp", "factor", "email", "code", "000000", "csrf", token)
	wantStatus(t, resp, http.StatusServiceUnavailable, b.page)
	if !strings.Contains(b.page, "unavailable") {
		t.Fatalf("503 page: %s", b.page)
	}
	srv.Restart()
	b.get("/auth/otp?factor=email")
	resp = b.post("/auth/otp", "factor", "email", "code", code.Code)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Fatalf("after bob's code: %q", loc)
	}
}
