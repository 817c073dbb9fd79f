package portal

import (
	"net/http"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/internal/oidctest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// TestOIDCLinkByEmailToDirectoryUser: with link_by_email, a provider user
// whose verified email is an LDAP user's mail (a real slapd, its user
// filter matching mail, its memberof overlay giving the group) signs in as
// that directory user: their key, their factors (the code goes to their
// directory mail), their group, their display name and the directory as
// idStoreName. The case of the address does not matter; an unverified
// email links nobody.
func TestOIDCLinkByEmailToDirectoryUser(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.LinkByEmail = true })
	srv := ldaptest.Start(t, "")
	d, err := ldapdir.New(ldapdir.Config{
		Name: "corp-ldap", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.PeopleDN, UserFilter: "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))",
		Attributes: ldapdir.Attributes{Group: "memberOf", Name: "cn"},
		TLS:        srv.TLSConfig(), Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	f.portal.Users = state.Directories{f.portal.Users, d}
	shouty := oidctest.User{Sub: "shouty-sub", Username: "shouty", Password: "shouty-pw", Email: "ALICE@Example.COM", EmailVerified: true}
	unverified := oidctest.User{Sub: "bobby-sub", Username: "bobby", Password: "bobby-pw", Email: "bob@example.com"}
	f.op.AddUser(shouty)
	f.op.AddUser(unverified)

	for _, pu := range []oidctest.User{alice, shouty} {
		b := f.browser(t)
		resp := b.abs(http.MethodGet, f.atProvider(b, pu, "/app"), nil)
		// alice has two factors in the directory (mail and mobile): the
		// choice comes first.
		wantStatus(t, resp, http.StatusSeeOther, b.page)
		wantLocation(t, resp, "/auth/otp?redirect=%2Fapp")
		pre := f.session(t, b)
		if pre.UserID != "alice" || pre.GroupName != "ops" || pre.IDStoreName != "corp-ldap" ||
			pre.UserAttributes["oidc_linked"] != "1" || pre.UserAttributes[state.NameAttribute] != "Alice Example" ||
			pre.Authenticated(f.clk.Now()) {
			t.Fatalf("%s: pre-auth session %+v", pu.Username, pre)
		}
		b.get("/auth/otp?factor=email")
		wantStatus(t, b.post("/auth/otp/send", "factor", "email", "redirect", "/app"), http.StatusSeeOther, b.page)
		b.get("/auth/otp?factor=email&redirect=%2Fapp")
		code := f.mail.last(t)
		if code.To != "alice@example.com" {
			t.Fatalf("%s: the code went to %q", pu.Username, code.To)
		}
		resp = b.post("/auth/otp", "factor", "email", "code", code.Code, "redirect", "/app")
		wantStatus(t, resp, http.StatusSeeOther, b.page)
		s := f.session(t, b)
		if s.UserID != "alice" || s.GroupName != "ops" || !s.Authenticated(f.clk.Now()) ||
			len(s.Factors) != 2 || s.Factors[0] != "OIDC:corp" || s.Factors[1] != state.FactorEmail {
			t.Fatalf("%s: session %+v", pu.Username, s)
		}
	}

	// bob's address, unverified at the provider: not linked.
	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, unverified, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if s := f.session(t, b); s.UserID != "corp:bobby-sub" || s.UserAttributes["oidc_linked"] != "" {
		t.Fatalf("an unverified email signed in as %q (%+v)", s.UserID, s)
	}

	// The directory down: the sign-in is refused with 503, never as
	// the provider's own user.
	srv.Stop()
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusServiceUnavailable, b.page)
	f.noSession(t, b)
}
