package portal

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

func TestPortalEmailFlowRotatesSessionID(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)

	resp := b.get("/app/page?x=1")
	wantStatus(t, resp, http.StatusFound, b.page)
	wantLocation(t, resp, "/auth/login?redirect=%2Fapp%2Fpage%3Fx%3D1")

	resp = b.get("/auth/login?redirect=%2Fapp%2Fpage%3Fx%3D1")
	wantStatus(t, resp, http.StatusOK, b.page)
	for _, want := range []string{"<title>Example sign-in</title>", `name="login"`, `type="password"`, `value="/app/page?x=1"`} {
		if !strings.Contains(b.page, want) {
			t.Fatalf("login page lacks %q:\n%s", want, b.page)
		}
	}
	resp = b.post("/auth/login", "login", "demo", "password", demoPassword, "redirect", "/app/page?x=1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?redirect=%2Fapp%2Fpage%3Fx%3D1")
	pre := b.cookie()
	if pre == "" {
		t.Fatal("no pre-auth session cookie")
	}
	s, err := f.store.Get(context.Background(), state.KeyOf(pre))
	if err != nil || s.Status != state.StatusPendingVerification || s.UserID != "demo-id" {
		t.Fatalf("pre-auth session %+v, %v", s, err)
	}
	// Not through the gate yet.
	if resp := b.get("/app/page"); resp.StatusCode != http.StatusFound {
		t.Fatalf("pre-auth session passed the gate: %d", resp.StatusCode)
	}

	resp = b.get("/auth/otp?redirect=%2Fapp%2Fpage%3Fx%3D1")
	wantStatus(t, resp, http.StatusOK, b.page)
	if !strings.Contains(b.page, "Email me a code") || !strings.Contains(b.page, "Use my authenticator app") {
		t.Fatalf("factor choice missing:\n%s", b.page)
	}
	resp = b.post("/auth/otp/send", "redirect", "/app/page?x=1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=email&redirect=%2Fapp%2Fpage%3Fx%3D1")
	msg := f.mail.last(t)
	if msg.To != "demo@example.com" || len(msg.Code) != 6 || msg.Channel != delivery.ChannelEmail {
		t.Fatalf("delivered %+v", msg)
	}
	b.get("/auth/otp?factor=email&redirect=%2Fapp%2Fpage%3Fx%3D1")
	if !strings.Contains(b.page, "d***@example.com") {
		t.Fatalf("email page does not say where the code went:\n%s", b.page)
	}
	resp = b.post("/auth/otp", "factor", "email", "code", msg.Code, "redirect", "/app/page?x=1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app/page?x=1")
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "authsession" {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" {
		t.Fatalf("session cookie %+v", set)
	}
	post := b.cookie()
	if post == pre || post == "" {
		t.Fatalf("session id not rotated: %q -> %q", pre, post)
	}
	resp = b.get("/app/page")
	wantStatus(t, resp, http.StatusOK, b.page)
	if b.page != "hello demo" {
		t.Fatalf("app said %q", b.page)
	}
	ns, err := f.store.Get(context.Background(), state.KeyOf(post))
	if err != nil || !slices.Equal(ns.Factors, []string{state.FactorEmail}) || ns.Status != state.StatusAuthenticated {
		t.Fatalf("new session %+v, %v", ns, err)
	}
	if _, err := f.store.Get(context.Background(), state.KeyOf(pre)); err != state.ErrNotFound {
		t.Fatalf("pre-auth session still stored: %v", err)
	}
	// The old id no longer opens anything.
	old := f.browser(t)
	u, _ := url.Parse(f.srv.URL)
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authsession", Value: pre}})
	if resp := old.get("/app/page"); resp.StatusCode != http.StatusFound {
		t.Fatalf("pre-login id still opens the app: %d %s", resp.StatusCode, old.page)
	}
	// The code is spent.
	b2 := f.browser(t)
	b2.signIn("demo", "")
	b2.get("/auth/otp?factor=email")
	resp = b2.post("/auth/otp", "factor", "email", "code", msg.Code)
	wantStatus(t, resp, http.StatusUnauthorized, b2.page)
}

func TestPortalSecureCookieByDefault(t *testing.T) {
	f := newPortalFixture(t, "")
	f.portal.Cookie.Insecure = false
	b := f.browser(t)
	b.get("/auth/login")
	v := url.Values{"login": {"mailonly"}, "password": {demoPassword}, "csrf": {b.csrf()}}
	r, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/auth/login", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := b.do(r)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=email")
	found := false
	for _, c := range resp.Cookies() {
		if c.Name == "authsession" {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Fatalf("cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie set")
	}
	// The only factor is email: the code went out with the password step.
	if f.mail.count() != 1 {
		t.Fatalf("%d codes sent, want 1", f.mail.count())
	}
}

func TestPortalTOTP(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signIn("totponly", "/app")
	resp := b.get("/auth/otp?redirect=%2Fapp")
	wantStatus(t, resp, http.StatusOK, b.page)
	if !strings.Contains(b.page, "authenticator app") || !strings.Contains(b.page, `value="totp"`) {
		t.Fatalf("TOTP form missing:\n%s", b.page)
	}
	resp = b.post("/auth/otp", "factor", "totp", "code", "000000", "redirect", "/app")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b.page, "not right") {
		t.Fatalf("wrong TOTP: %d\n%s", resp.StatusCode, b.page)
	}
	code, err := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp = b.post("/auth/otp", "factor", "totp", "code", code[:3]+" "+code[3:], "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
	s, err := f.store.Get(context.Background(), state.KeyOf(b.cookie()))
	if err != nil || !slices.Equal(s.Factors, []string{state.FactorTOTP}) {
		t.Fatalf("session %+v, %v", s, err)
	}
	// The same code again is a replay.
	b2 := f.browser(t)
	b2.signIn("totponly", "")
	b2.get("/auth/otp")
	resp = b2.post("/auth/otp", "factor", "totp", "code", code)
	wantStatus(t, resp, http.StatusUnauthorized, b2.page)
}

func TestPortalCSRF(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.get("/auth/login")
	token := b.csrf()

	resp := b.post("/auth/login", "login", "demo", "password", demoPassword, "csrf", "-")
	wantStatus(t, resp, http.StatusForbidden, b.page)
	if b.cookie() != "" {
		t.Fatal("a session was opened without a CSRF token")
	}
	// Another browser's token does not fit this browser's cookie.
	other := f.browser(t)
	other.get("/auth/login")
	resp = b.post("/auth/login", "login", "demo", "password", demoPassword, "csrf", other.csrf())
	wantStatus(t, resp, http.StatusForbidden, b.page)
	// A token without its cookie (a cross-site form has no way to set it).
	fresh := f.browser(t)
	resp = fresh.post("/auth/login", "login", "demo", "password", demoPassword, "csrf", token)
	wantStatus(t, resp, http.StatusForbidden, fresh.page)
	// Right token, foreign Origin.
	v := url.Values{"login": {"demo"}, "password": {demoPassword}, "csrf": {token}}
	r, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/auth/login", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://evil.example")
	resp = b.do(r)
	wantStatus(t, resp, http.StatusForbidden, b.page)
	if b.cookie() != "" {
		t.Fatal("a session was opened by a forged form")
	}
	// Sign in properly, then a forged sign-out changes nothing.
	b.signIn("demo", "")
	if resp := b.mailCode(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in failed: %d %s", resp.StatusCode, b.page)
	}
	resp = b.post("/auth/logout", "csrf", "forged")
	wantStatus(t, resp, http.StatusForbidden, b.page)
	if resp := b.get("/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("forged sign-out signed out: %d", resp.StatusCode)
	}
	b.get("/auth/logout")
	resp = b.post("/auth/logout")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if resp := b.get("/app"); resp.StatusCode != http.StatusFound {
		t.Fatalf("still signed in after sign-out: %d", resp.StatusCode)
	}
}

func TestPortalOpenRedirect(t *testing.T) {
	for _, bad := range []string{
		"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
		"http:/evil.example", "/\t/evil.example", "evil.example",
	} {
		t.Run(bad, func(t *testing.T) {
			f := newPortalFixture(t, "")
			b := f.browser(t)
			resp := b.get("/auth/login?redirect=" + url.QueryEscape(bad))
			wantStatus(t, resp, http.StatusOK, b.page)
			if strings.Contains(b.page, `name="redirect"`) {
				t.Fatalf("unsafe target kept in the form:\n%s", b.page)
			}
			resp = b.post("/auth/login", "login", "demo", "password", demoPassword, "redirect", bad)
			wantStatus(t, resp, http.StatusSeeOther, b.page)
			wantLocation(t, resp, "/auth/otp")
			b.get("/auth/otp")
			b.post("/auth/otp/send", "redirect", bad)
			b.get("/auth/otp?factor=email")
			resp = b.post("/auth/otp", "factor", "email", "code", f.mail.last(t).Code, "redirect", bad)
			wantStatus(t, resp, http.StatusSeeOther, b.page)
			wantLocation(t, resp, "/")
			// Already signed in: the login page does not bounce either.
			resp = b.get("/auth/login?redirect=" + url.QueryEscape(bad))
			wantStatus(t, resp, http.StatusSeeOther, b.page)
			wantLocation(t, resp, "/")
		})
	}
}

func TestPortalLockoutPerUser(t *testing.T) {
	f := newPortalFixture(t, "")
	for i := range DefaultFailureMax {
		b := f.browser(t)
		b.ip = "198.51.100." + strconv.Itoa(i+1) // a different address each time
		b.get("/auth/login")
		resp := b.post("/auth/login", "login", "demo", "password", "wrong")
		wantStatus(t, resp, http.StatusUnauthorized, b.page)
		if !strings.Contains(b.page, "Wrong login or password.") {
			t.Fatalf("no generic error:\n%s", b.page)
		}
	}
	f.clk.Advance(time.Minute)
	b := f.browser(t)
	b.ip = "203.0.113.7"
	b.get("/auth/login")
	token := b.csrf()
	resp := b.post("/auth/login", "login", "DEMO", "password", demoPassword)
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
	if got := resp.Header.Get("Retry-After"); got != "240" {
		t.Fatalf("Retry-After %q, want 240", got)
	}
	if b.cookie() != "" {
		t.Fatal("a locked user got a session")
	}
	// Other users are not affected.
	resp = b.post("/auth/login", "login", "mailonly", "password", demoPassword, "csrf", token)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	// Once the window has passed, demo signs in again.
	f.clk.Advance(4 * time.Minute)
	b.get("/auth/login")
	resp = b.post("/auth/login", "login", "demo", "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
}

func TestPortalLockoutPerIP(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.get("/auth/login")
	for i := range DefaultFailureMax {
		resp := b.post("/auth/login", "login", "nobody"+strconv.Itoa(i), "password", "x")
		wantStatus(t, resp, http.StatusUnauthorized, b.page)
	}
	resp := b.post("/auth/login", "login", "demo", "password", demoPassword)
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
	if got := resp.Header.Get("Retry-After"); got != "300" {
		t.Fatalf("Retry-After %q, want 300", got)
	}
	// Wrong codes count too, from another address for the same user.
	other := f.browser(t)
	other.ip = "192.0.2.99"
	other.signIn("totponly", "")
	other.get("/auth/otp")
	for range 4 {
		resp := other.post("/auth/otp", "factor", "totp", "code", "111111")
		wantStatus(t, resp, http.StatusUnauthorized, other.page)
	}
	// The fifth wrong code blocks the session (the OTP rules).
	resp = other.post("/auth/otp", "factor", "totp", "code", "111111")
	wantStatus(t, resp, http.StatusTooManyRequests, other.page)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on a blocked session")
	}
	resp = other.get("/auth/otp")
	wantStatus(t, resp, http.StatusTooManyRequests, other.page)
}

func TestPortalSessionsPage(t *testing.T) {
	f := newPortalFixture(t, "")
	a, b := f.browser(t), f.browser(t)
	for _, br := range []*browser{a, b} {
		br.signIn("demo", "")
		if resp := br.mailCode(); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, br.page)
		}
		f.clk.Advance(time.Minute) // the code cool-down is per session, the send limit per user
	}
	resp := a.get("/auth/sessions")
	wantStatus(t, resp, http.StatusOK, a.page)
	if n := strings.Count(a.page, `name="index"`); n != 2 {
		t.Fatalf("%d sessions listed, want 2:\n%s", n, a.page)
	}
	if !strings.Contains(a.page, "(this browser)") {
		t.Fatal("current session not marked")
	}
	bs, err := f.store.Get(context.Background(), state.KeyOf(b.cookie()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.page, b.cookie()) || strings.Contains(a.page, a.cookie()) {
		t.Fatal("the page shows a session id")
	}
	resp = a.post("/auth/sessions/revoke", "index", bs.Index)
	wantStatus(t, resp, http.StatusSeeOther, a.page)
	if resp := b.get("/app"); resp.StatusCode != http.StatusFound {
		t.Fatalf("revoked session still passes: %d", resp.StatusCode)
	}
	if resp := a.get("/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("own session lost: %d", resp.StatusCode)
	}
	a.get("/auth/sessions")
	resp = a.post("/auth/sessions/revoke", "all", "1")
	wantStatus(t, resp, http.StatusSeeOther, a.page)
	wantLocation(t, resp, "/auth/login?signed_out=1")
	if resp := a.get("/app"); resp.StatusCode != http.StatusFound {
		t.Fatalf("signed out everywhere but still passes: %d", resp.StatusCode)
	}
	// Without a session the page asks to sign in.
	resp = a.get("/auth/sessions")
	wantStatus(t, resp, http.StatusSeeOther, a.page)
	wantLocation(t, resp, "/auth/login?redirect=%2Fauth%2Fsessions")
}

func TestPortalNoFactorRefused(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.get("/auth/login")
	resp := b.post("/auth/login", "login", "nofactor", "password", demoPassword)
	wantStatus(t, resp, http.StatusForbidden, b.page)
	if b.cookie() != "" {
		t.Fatal("session opened for a user without a second factor")
	}
}

func TestPortalTemplateDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{define "content"}}<h1>Custom {{.Title}}</h1>
<form method="post" action="{{.Prefix}}/login"><input type="hidden" name="csrf" value="{{.CSRF}}">
<input name="login"><input name="password" type="password"><button>Go</button></form>{{end}}`), 0o600)
	f := newPortalFixture(t, dir)
	f.portal.Logo = "/logo.png"
	b := f.browser(t)
	resp := b.get("/auth/login")
	wantStatus(t, resp, http.StatusOK, b.page)
	if !strings.Contains(b.page, "<h1>Custom Example sign-in</h1>") || !strings.Contains(b.page, `<img class="logo" src="/logo.png"`) {
		t.Fatalf("custom template not used:\n%s", b.page)
	}
	// The user's form works; the pages it does not replace stay embedded.
	resp = b.post("/auth/login", "login", "demo", "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	b.get("/auth/otp")
	if !strings.Contains(b.page, "Confirm it is you") {
		t.Fatalf("embedded otp page missing:\n%s", b.page)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "otp.html"), []byte(`{{define "content"}}{{.Nope`), 0o600)
	if _, err := LoadPages(bad); err == nil || !strings.Contains(err.Error(), "otp.html") {
		t.Fatalf("broken template: %v", err)
	}
	if _, err := LoadPages(filepath.Join(bad, "missing")); err == nil {
		t.Fatal("missing template dir accepted")
	}
}

func TestPortalPageHeaders(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	resp := b.get("/auth/login")
	for k, want := range map[string]string{
		"Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Content-Type": "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("no CSP")
	}
	resp = b.get("/auth/nope")
	wantStatus(t, resp, http.StatusNotFound, b.page)
	resp = b.get("/auth")
	wantStatus(t, resp, http.StatusFound, b.page)
	// The factor page without a session goes back to sign-in.
	resp = b.get("/auth/otp?redirect=%2Fx")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/login?redirect=%2Fx")
}
