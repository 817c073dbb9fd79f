package portal

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/oidctest"
	"github.com/authsession/caddy-authsession/state"
)

// followStepUp asks the gate for /app with a session it refuses for step-up,
// checks the redirect it gets, and opens the sign-in page it names.
func followStepUp(t *testing.T, b *browser, need string) {
	t.Helper()
	resp := b.get("/app")
	wantStatus(t, resp, http.StatusFound, b.page)
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/auth/login" || q.Get("reauth") != "1" || q.Get("need") != need || q.Get("redirect") != "/app" {
		t.Fatalf("gate's step-up redirect: %q", resp.Header.Get("Location"))
	}
	// The sign-in page asks again instead of sending the signed-in
	// browser straight back to the gate (which would send it here again).
	resp = b.get(u.RequestURI())
	wantStatus(t, resp, http.StatusOK, b.page)
	if !strings.Contains(b.page, `name="reauth" value="1"`) || !strings.Contains(b.page, "sign in again") {
		t.Fatalf("sign-in page of a fresh sign-in:\n%s", b.page)
	}
}

// signedIn signs login in with its first factor, mail or TOTP, and checks
// that the gate lets the browser through.
func signedIn(t *testing.T, b *browser, login, factor string) {
	t.Helper()
	b.signIn(login, "/app")
	answer(t, b, factor)
	b.get("/app")
	if b.page != "hello "+login {
		t.Fatalf("gate after sign-in: %q", b.page)
	}
}

// answer completes the second factor of a browser whose password was just
// accepted (a mailed code waiting for "email"), with the target /app.
func answer(t *testing.T, b *browser, factor string) {
	t.Helper()
	b.get("/auth/otp?factor=" + factor + "&redirect=/app")
	var code string
	if factor == "email" {
		code = b.f.mail.last(t).Code
	} else {
		var err error
		if code, err = b.f.portal.TOTP.Code(demoSecret, b.f.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp := b.post("/auth/otp", "factor", factor, "code", code, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
}

// TestPortalStepUpMaxAuthAge: a browser whose sign-in is older than the
// gate's max_auth_age signs in again (password and factor) under a new
// session id, and is let through; before, the gate and the sign-in page
// sent it back and forth.
func TestPortalStepUpMaxAuthAge(t *testing.T) {
	f := newPortalFixture(t, "")
	f.gate.MaxAuthAge = 10 * time.Minute
	b := f.browser(t)
	signedIn(t, b, "mailonly", "email")
	f.clk.Advance(11 * time.Minute)
	old := b.cookie()
	followStepUp(t, b, "")

	// A wrong password changes nothing: the old session stays, still refused.
	resp := b.post("/auth/login", "login", "mailonly", "password", "wrong", "redirect", "/app", "reauth", "1")
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	if b.cookie() != old {
		t.Fatal("a failed fresh sign-in replaced the session")
	}
	if !strings.Contains(b.page, `name="reauth" value="1"`) {
		t.Fatalf("the page after a wrong password lost the fresh sign-in:\n%s", b.page)
	}

	sent := f.mail.count()
	resp = b.post("/auth/login", "login", "mailonly", "password", demoPassword, "redirect", "/app", "reauth", "1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=email&redirect=%2Fapp")
	if f.mail.count() != sent+1 {
		t.Fatalf("codes mailed: %d, want %d", f.mail.count(), sent+1)
	}
	if b.cookie() == old {
		t.Fatal("the fresh sign-in kept the old session id")
	}
	if _, err := f.store.Get(context.Background(), state.KeyOf(old)); err == nil {
		t.Fatal("the old session outlived the fresh sign-in")
	}
	b.get("/app")
	if b.page == "hello mailonly" {
		t.Fatalf("gate let a session through before its second factor: %q", b.page)
	}
	answer(t, b, "email")
	b.get("/app")
	if b.page != "hello mailonly" {
		t.Fatalf("gate after the fresh sign-in: %q", b.page)
	}
	// Without reauth the sign-in page still sends a signed-in browser on.
	wantLocation(t, b.get("/auth/login?redirect=/app"), "/app")
}

// TestPortalStepUpRequireFactor: a session without the factor a gate
// requires is asked for a fresh sign-in with that factor; the password
// leads straight to its form, and no code is mailed meanwhile. A user
// without the factor is told so instead of being sent in circles.
func TestPortalStepUpRequireFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	f.gate.RequireFactor = state.FactorTOTP
	b := f.browser(t)
	b.signIn("demo", "/app")
	b.get("/auth/otp")
	wantStatus(t, b.post("/auth/otp/send"), http.StatusSeeOther, b.page)
	answer(t, b, "email")
	followStepUp(t, b, state.FactorTOTP)
	if !strings.Contains(b.page, "authenticator app") || !strings.Contains(b.page, `name="need" value="ChallengeOMATOTP"`) {
		t.Fatalf("sign-in page does not name the factor it needs:\n%s", b.page)
	}
	sent := f.mail.count()
	resp := b.post("/auth/login", "login", "demo", "password", demoPassword, "redirect", "/app",
		"reauth", "1", "need", state.FactorTOTP)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=totp&redirect=%2Fapp")
	if f.mail.count() != sent {
		t.Fatal("a code was mailed for a sign-in that needs the authenticator app")
	}
	answer(t, b, "totp")
	b.get("/app")
	if b.page != "hello demo" {
		t.Fatalf("gate after the sign-in with TOTP: %q", b.page)
	}
	s, err := f.store.Get(context.Background(), state.KeyOf(b.cookie()))
	if err != nil || !slices.Contains(s.Factors, state.FactorTOTP) {
		t.Fatalf("session after the fresh sign-in: %+v, %v", s, err)
	}

	m := f.browser(t)
	m.ip = "192.0.2.2"
	m.signIn("mailonly", "/app")
	answer(t, m, "email")
	followStepUp(t, m, state.FactorTOTP)
	resp = m.post("/auth/login", "login", "mailonly", "password", demoPassword, "redirect", "/app",
		"reauth", "1", "need", state.FactorTOTP)
	wantStatus(t, resp, http.StatusForbidden, m.page)
	if !strings.Contains(m.page, "authenticator app") {
		t.Fatalf("refusal does not say what is missing:\n%s", m.page)
	}
}

// TestPortalStepUpSkipsTrustedBrowser: a trusted browser signs in with the
// password alone, except for a fresh sign-in asked for by a gate, which
// asks for the second factor too.
func TestPortalStepUpSkipsTrustedBrowser(t *testing.T) {
	f := newPortalFixture(t, "")
	f.portal.TrustFor = 30 * 24 * time.Hour
	f.gate.MaxAuthAge = 10 * time.Minute
	b := f.browser(t)
	b.signIn("totponly", "/app")
	resp := b.totpCode(true)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if b.deviceCookie() == "" {
		t.Fatal("no device cookie after trust")
	}
	f.clk.Advance(11 * time.Minute)
	followStepUp(t, b, "")
	resp = b.post("/auth/login", "login", "totponly", "password", demoPassword, "redirect", "/app", "reauth", "1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/auth/otp") {
		t.Fatalf("a fresh sign-in on a trusted browser went to %q, not to the second factor", loc)
	}
	f.clk.Advance(31 * time.Second) // a fresh TOTP step
	answer(t, b, "totp")
	b.get("/app")
	if b.page != "hello totponly" {
		t.Fatalf("gate after the fresh sign-in: %q", b.page)
	}
}

// TestPortalStepUpAtProvider: on the page of a fresh sign-in, the
// provider buttons ask the provider to authenticate the user again
// (prompt=login) instead of reusing the provider's own session.
func TestPortalStepUpAtProvider(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	authz := func(page string) url.Values {
		t.Helper()
		b.get(page)
		m := regexp.MustCompile(`class="provider" href="([^"]+)"`).FindStringSubmatch(b.page)
		if m == nil {
			t.Fatalf("no provider button:\n%s", b.page)
		}
		resp := b.get(html.UnescapeString(m[1]))
		wantStatus(t, resp, http.StatusFound, b.page)
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return u.Query()
	}
	if q := authz("/auth/login?redirect=/app"); q.Has("prompt") {
		t.Fatalf("an ordinary sign-in asks the provider for prompt=%q", q.Get("prompt"))
	}
	if q := authz("/auth/login?redirect=/app&reauth=1"); q.Get("prompt") != "login" {
		t.Fatalf("a fresh sign-in asks the provider for prompt=%q, want login", q.Get("prompt"))
	}
}

// TestOIDCStepUpSkipsTrustedBrowser: a sign-in through a provider on a
// trusted browser skips our second factor, except for a fresh sign-in
// asked for by a gate.
func TestOIDCStepUpSkipsTrustedBrowser(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.LinkByEmail = true })
	f.portal.TrustFor = 30 * 24 * time.Hour
	// The provider's tokens follow the real clock: the gate asks for the
	// factor, not for a recent sign-in.
	f.gate.RequireFactor = state.FactorEmail
	b := f.browser(t)
	// mallory links to mailonly, whose one factor (mail) is sent at once.
	resp := b.abs(http.MethodGet, f.atProvider(b, mallory, "/app"), nil)
	wantLocation(t, resp, "/auth/otp?factor=email&redirect=%2Fapp")
	b.get("/auth/otp?factor=email&redirect=%2Fapp")
	resp = b.post("/auth/otp", "factor", "email", "code", f.mail.last(t).Code, "redirect", "/app", "trust", "1")
	wantLocation(t, resp, "/app")
	if b.deviceCookie() == "" {
		t.Fatal("no device cookie after trust")
	}
	// An ordinary sign-in again: the trusted browser skips the factor, and
	// the gate asks for it.
	resp = b.abs(http.MethodGet, f.atProvider(b, mallory, "/app"), nil)
	wantLocation(t, resp, "/app")
	followStepUp(t, b, state.FactorEmail)
	resp = b.abs(http.MethodGet, f.atProviderFrom(b, mallory, "/auth/oidc/corp/login?reauth=1&redirect=%2Fapp"), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/auth/otp") {
		t.Fatalf("a fresh sign-in through the provider on a trusted browser went to %q, not to the second factor", loc)
	}
	if f.session(t, b).Authenticated(f.clk.Now()) {
		t.Fatal("the fresh sign-in is authenticated before its second factor")
	}
}

// TestOIDCStepUpNeedsFreshAuthTime: a fresh sign-in through a provider asks
// for prompt=login and max_age=0, and takes the provider's word only if its
// auth_time falls within the sign-in: a provider that ignored the request
// and answered from an older sign-in of its own is refused, and nothing is
// opened. An ordinary sign-in does not look at auth_time.
func TestOIDCStepUpNeedsFreshAuthTime(t *testing.T) {
	f := newOIDCFixture(t, nil)
	const start = "/auth/oidc/corp/login?reauth=1&redirect=%2Fapp"

	b := f.browser(t)
	resp := b.get(start)
	wantStatus(t, resp, http.StatusFound, b.page)
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Query().Get("prompt") != "login" || u.Query().Get("max_age") != "0" {
		t.Fatalf("authorization request of a fresh sign-in: %q", resp.Header.Get("Location"))
	}

	f.op.OverrideIDTokens(&oidctest.IDTokenOverride{AuthTime: time.Now().Add(-time.Hour)})
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProviderFrom(b, alice, start), nil)
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	if !strings.Contains(b.page, "did not ask you to sign in again") {
		t.Fatalf("refusal page:\n%s", b.page)
	}
	f.noSession(t, b)
	// An ordinary sign-in takes the same token.
	resp = b.abs(http.MethodGet, f.atProvider(b, alice, "/app"), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")

	// A provider that did sign the user in again: the fresh sign-in opens.
	f.op.OverrideIDTokens(nil)
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProviderFrom(b, alice, start), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
	if !f.session(t, b).Authenticated(f.clk.Now()) {
		t.Fatal("the fresh sign-in is not authenticated")
	}
}
