package portal

import (
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// rawPost submits a form with exactly the given Cookie header (no jar).
func (b *browser) rawPost(path, cookies string, v url.Values) *http.Response {
	b.t.Helper()
	r, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", cookies)
	c := &http.Client{CheckRedirect: b.c.CheckRedirect}
	old := b.c
	b.c = c
	defer func() { b.c = old }()
	return b.do(r)
}

// jarCookie returns the value of the browser's cookie name sent to path.
func (b *browser) jarCookie(path, name string) string {
	u, _ := url.Parse(b.f.srv.URL + path)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// A CSRF cookie and token minted by another browser (an attacker's,
// planted in the victim's browser e.g. from a sibling subdomain) do not
// fit the victim's session.
func TestPortalCSRFBoundToSession(t *testing.T) {
	f := newPortalFixture(t, "")
	victim := f.browser(t)
	victim.signIn("demo", "")
	if resp := victim.mailCode(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in failed: %d %s", resp.StatusCode, victim.page)
	}
	sid := victim.cookie()

	// The attacker has a session of their own, and a logout form for it.
	attacker := f.browser(t)
	attacker.ip = "198.51.100.9"
	attacker.signIn("mailonly", "")
	attacker.get("/auth/logout")
	token, planted := attacker.csrf(), attacker.jarCookie("/auth/logout", "authsession_csrf")
	if planted == "" {
		t.Fatal("the attacker has no csrf cookie")
	}
	resp := victim.rawPost("/auth/logout", "authsession="+sid+"; authsession_csrf="+planted, url.Values{"csrf": {token}})
	wantStatus(t, resp, http.StatusForbidden, victim.page)
	// Nor does a token minted with no session at all.
	fresh := f.browser(t)
	fresh.get("/auth/login")
	token, planted = fresh.csrf(), fresh.jarCookie("/auth/login", "authsession_csrf")
	resp = victim.rawPost("/auth/logout", "authsession="+sid+"; authsession_csrf="+planted, url.Values{"csrf": {token}})
	wantStatus(t, resp, http.StatusForbidden, victim.page)
	if resp := victim.get("/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim was signed out by a planted token: %d", resp.StatusCode)
	}
}

// A token rendered for the pre-auth session stops working once the session
// id is rotated; the pages rendered afterwards carry tokens for the new id.
func TestPortalCSRFFollowsRotation(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signIn("demo", "")
	b.get("/auth/otp")
	stale := b.csrf()
	if resp := b.mailCode(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in failed: %d %s", resp.StatusCode, b.page)
	}
	resp := b.post("/auth/logout", "csrf", stale)
	wantStatus(t, resp, http.StatusForbidden, b.page)
	b.get("/auth/logout")
	resp = b.post("/auth/logout")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
}

// A form rendered in the same response as a new session cookie is signed
// for that cookie, not the one the request came with.
func TestPortalCSRFTokenAfterSetSession(t *testing.T) {
	f := newPortalFixture(t, "")
	p := f.portal
	r := httptest.NewRequest(http.MethodGet, "/auth/login", nil)
	r.AddCookie(&http.Cookie{Name: "authsession", Value: state.NewID()})
	w := httptest.NewRecorder()
	p.setSession(w, r, state.NewID())
	token := p.csrfToken(w, r)

	post := httptest.NewRequest(http.MethodPost, "/auth/logout", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range w.Result().Cookies() {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	if err := post.ParseForm(); err != nil {
		t.Fatal(err)
	}
	if !p.checkCSRF(post) {
		t.Fatal("the token rendered after setSession does not fit the new session cookie")
	}
}

// The Origin check compares scheme, host and port. The expected scheme is
// the request's (TLS) or, over plain http, https unless the cookie block
// says insecure.
func TestPortalCSRFOrigin(t *testing.T) {
	f := newPortalFixture(t, "")
	p := f.portal
	for _, tt := range []struct {
		name     string
		insecure bool
		tls      bool
		host     string
		origin   string
		ok       bool
	}{
		{"same http origin", true, false, "portal.example:8080", "http://portal.example:8080", true},
		{"case of host", true, false, "Portal.Example:8080", "http://portal.example:8080", true},
		{"other port", true, false, "portal.example:8080", "http://portal.example:9090", false},
		{"https origin to http portal", true, false, "portal.example:8080", "https://portal.example:8080", false},
		{"other host", true, false, "portal.example", "http://evil.example", false},
		{"null", true, false, "portal.example", "null", false},
		{"http origin to tls", true, true, "portal.example", "http://portal.example", false},
		{"https to tls, default port", true, true, "portal.example:443", "https://portal.example", true},
		{"https to tls", false, true, "portal.example", "https://portal.example", true},
		{"http origin, secure cookies behind a tls proxy", false, false, "portal.example", "http://portal.example", false},
		{"https origin, secure cookies behind a tls proxy", false, false, "portal.example", "https://portal.example", true},
		{"origin with a path", false, true, "portal.example", "https://portal.example/x", false},
		{"ipv6", false, true, "[::1]:8443", "https://[::1]:8443", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.Cookie.Insecure = tt.insecure
			get := httptest.NewRequest(http.MethodGet, "/auth/login", nil)
			w := httptest.NewRecorder()
			token := p.csrfToken(w, get)
			v := url.Values{"csrf": {token}, "login": {"demo"}, "password": {"wrong"}}
			r := httptest.NewRequest(http.MethodPost, "/auth/login", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Host = tt.host
			if !tt.tls {
				r.TLS = nil
			} else {
				r.TLS = &tls.ConnectionState{}
			}
			r.Header.Set("Origin", tt.origin)
			for _, c := range w.Result().Cookies() {
				r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			if got := p.checkCSRF(r); got != tt.ok {
				t.Fatalf("checkCSRF = %v, want %v", got, tt.ok)
			}
		})
	}
}

// A __Host- cookie name makes the session, CSRF and trusted-device cookies
// host-only, Secure and on Path=/; the whole sign-in works with them over
// https; Init refuses a spec that contradicts the prefix.
func TestPortalHostPrefixCookies(t *testing.T) {
	f := newPortalFixture(t, "")
	f.portal.Cookie = CookieSpec{Name: "__Host-authsession", Path: "/"}
	f.portal.TrustFor = 24 * time.Hour
	tlsSrv := httptest.NewTLSServer(f.srv.Config.Handler)
	t.Cleanup(tlsSrv.Close)
	f.srv = tlsSrv
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, f: f, ip: "192.0.2.1", c: &http.Client{
		Jar: jar, Transport: tlsSrv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	seen := map[string]bool{}
	check := func(resp *http.Response) {
		t.Helper()
		for _, c := range resp.Cookies() {
			seen[c.Name] = true
			if c.Path != "/" || c.Domain != "" || !c.Secure || !c.HttpOnly {
				t.Errorf("cookie %s: Path=%q Domain=%q Secure=%v HttpOnly=%v", c.Name, c.Path, c.Domain, c.Secure, c.HttpOnly)
			}
		}
	}
	check(b.get("/auth/login"))
	resp := b.post("/auth/login", "login", "totponly", "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	check(resp)
	code, err := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	check(b.get("/auth/otp?factor=totp"))
	resp = b.post("/auth/otp", "factor", "totp", "code", code, "trust", "1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	check(resp)
	for _, name := range []string{"__Host-authsession", "__Host-authsession_csrf", "__Host-authsession_device"} {
		if !seen[name] {
			t.Errorf("cookie %s never set", name)
		}
	}
	check(b.get("/auth/logout"))
	resp = b.post("/auth/logout")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	check(resp)

	for _, bad := range []CookieSpec{
		{Name: "__Host-a", Insecure: true},
		{Name: "__Host-a", Domain: "example.com"},
		{Name: "__Host-a", Path: "/app"},
		{Name: "__Secure-a", Insecure: true},
	} {
		p := *f.portal
		p.Cookie = bad
		if err := p.Init(); err == nil {
			t.Errorf("Init accepted %+v", bad)
		}
	}
}
