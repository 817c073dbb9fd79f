package integration

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authsession/caddy-authsession/internal/oidctest"
	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// oidcUser is the provider's test user.
var oidcUser = oidctest.User{Sub: "u-4711", Username: "jane", Password: "jane-password", Email: "jane@example.com", EmailVerified: true, Groups: []string{"staff"}}

// startOIDCRedisCaddy runs bin/caddy with the portal, the API and a gate
// on a Redis store, the provider "corp" configured with back-channel
// logout; instances sharing sealKey act as one.
func startOIDCRedisCaddy(t *testing.T, bin string, redisPort int, sealKey string, op *oidctest.Provider) string {
	t.Helper()
	dir := t.TempDir()
	port, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	storage file_system %s
	authsession {
		store redis redis://127.0.0.1:%d {
			key_prefix oidc-it:
			timeout 2s
		}
		seal_key %s
		api_user admin %s
		cookie {
			insecure
		}
		oidc corp {
			issuer %s
			client_id %s
			client_secret %s
			scopes openid email profile groups
			allowed_groups staff
			second_factor if_registered
			backchannel_logout
		}
	}
}
http://127.0.0.1:%d {
	authsession api
	authsession portal
	authsession gate {
		require_group staff
	}
	respond "hello {http.auth.user.login}"
}
`, admin, dir, redisPort, sealKey, demoAdminHash, op.Issuer, op.ClientID, op.ClientSecret, port)
	base := runCaddy(t, bin, dir, cfg, port)
	op.AllowRedirect(base + "/auth/oidc/corp/callback")
	return base
}

// oidcSignIn signs in at base through the provider with a Go HTTP client
// (following the redirects, as a browser does) and returns the session
// cookie's value.
func oidcSignIn(t *testing.T, base string, op *oidctest.Provider) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/auth/oidc/corp/login?redirect=%2Fapp")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), op.Issuer+"/login?") {
		t.Fatalf("not at the provider's login: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	id := resp.Request.URL.Query().Get("id")
	resp, err = c.PostForm(op.Issuer+"/login", url.Values{"id": {id}, "username": {oidcUser.Username}, "password": {oidcUser.Password}, "action": {"login"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/app" || string(page) != "hello jane" {
		t.Fatalf("after the provider: %d %s %q", resp.StatusCode, resp.Request.URL, page)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "authsession" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestOIDCBackchannelLogoutTwoInstances: a user signs in through the
// provider on instance A; B (sharing the Redis store) knows the session
// (gate, OAM search); a logout token posted to B revokes it on both, and
// the same token replayed to A is refused.
func TestOIDCBackchannelLogoutTwoInstances(t *testing.T) {
	bin := caddyBin(t)
	redisPort := redistest.Start(t).Port()
	op := oidctest.Start(t, oidcUser)
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	seal := base64.StdEncoding.EncodeToString(b)
	a := startOIDCRedisCaddy(t, bin, redisPort, seal, op)
	bb := startOIDCRedisCaddy(t, bin, redisPort, seal, op)

	sid := oidcSignIn(t, a, op)
	first := op.LastSID(oidcUser.Sub)
	other := oidcSignIn(t, a, op)
	for _, base := range []string{a, bb} {
		if got := gateStatus(t, base, sid); got != http.StatusOK {
			t.Fatalf("gate at %s: %d", base, got)
		}
	}
	code, body := oamCall(t, http.MethodPost, bb+oamBase+"/sessions", `{"userId":"corp:u-4711"}`)
	if code != http.StatusOK || strings.Count(body, `"sessionId"`) != 2 || !strings.Contains(body, "jane") {
		t.Fatalf("OAM search on B: %d %s", code, body)
	}

	logout := func(base, token string) (int, string) {
		resp, err := http.PostForm(base+"/auth/oidc/corp/backchannel", url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The first sign-in's provider session (sid alone), at B: that
	// session goes on both instances, the other stays.
	if code, body := logout(bb, op.LogoutToken(t, oidctest.LogoutClaims{SID: first})); code != http.StatusOK {
		t.Fatalf("back-channel logout by sid at B: %d %s", code, body)
	}
	for _, base := range []string{a, bb} {
		if got := gateStatusWithin(t, base, sid, http.StatusUnauthorized); got != http.StatusUnauthorized {
			t.Fatalf("gate at %s after the sid logout: %d", base, got)
		}
		if got := gateStatus(t, base, other); got != http.StatusOK {
			t.Fatalf("gate at %s for the other session: %d", base, got)
		}
	}
	// The user (sub), at B: every session of the user goes.
	tok := op.LogoutToken(t, oidctest.LogoutClaims{Sub: oidcUser.Sub})
	if code, body := logout(bb, tok); code != http.StatusOK {
		t.Fatalf("back-channel logout by sub at B: %d %s", code, body)
	}
	for _, base := range []string{a, bb} {
		if got := gateStatusWithin(t, base, other, http.StatusUnauthorized); got != http.StatusUnauthorized {
			t.Fatalf("gate at %s after the sub logout: %d", base, got)
		}
	}
	// The same token at A: already used (the jti is kept in the store).
	if code, body := logout(a, tok); code != http.StatusBadRequest || !strings.Contains(body, `"invalid_request"`) {
		t.Fatalf("replayed logout token at A: %d %s", code, body)
	}
	if code, body := logout(a, op.LogoutToken(t, oidctest.LogoutClaims{Sub: oidcUser.Sub, Nonce: true})); code != http.StatusBadRequest {
		t.Fatalf("logout token with a nonce at A: %d %s", code, body)
	}
}

// TestOIDCE2E drives Chromium through a sign-in with the provider, on
// make run's configuration plus the provider "corp" (linking by verified
// email): the protected app sends to the sign-in page; "Sign in with
// Corp"; the provider's login form; back to the portal, which asks for
// the demo user's second factor (the provider's jane is linked to demo
// by her verified mail); the authenticator code; the app, under a new
// session id.
func TestOIDCE2E(t *testing.T) {
	demo := oidctest.User{Sub: "demo-sub", Username: "jane", Password: "jane-password", Email: "demo@example.com", EmailVerified: true}
	op := oidctest.Start(t, demo)
	d := startE2EDemoWith(t, "oidc", func(cfg, base string) string {
		op.AllowRedirect(base + "/auth/oidc/corp/callback")
		block := "\tauthsession {\n\t\toidc corp {\n\t\t\ttitle Corp\n\t\t\tissuer " + op.Issuer + "\n\t\t\tclient_id " + op.ClientID +
			"\n\t\t\tclient_secret " + op.ClientSecret + "\n\t\t\tlink_by_email\n\t\t}\n"
		if !strings.Contains(cfg, "\tauthsession {\n") {
			t.Fatal("Caddyfile.example has no authsession global option")
		}
		return strings.Replace(cfg, "\tauthsession {\n", block, 1)
	})
	d.run("opening the app", chromedp.Navigate(d.base+"/"))
	d.page("login-with-provider", "/auth/login?redirect=%2F", "Sign in with Corp")
	d.submit("choosing the provider", chromedp.Click(chromedp.CSS("a.provider")))
	d.run("at the provider", chromedp.WaitVisible(chromedp.CSS("#username")))
	loc := get(d, "provider location", chromedp.Location())
	if !strings.HasPrefix(loc, op.Issuer+"/login?") {
		t.Fatalf("the browser is at %q, not at the provider", loc)
	}
	d.submit("signing in at the provider",
		chromedp.SendKeys(chromedp.CSS("#username"), demo.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), demo.Password),
		chromedp.Click(chromedp.CSS("#submit")))
	d.page("factor-after-provider", "/auth/otp?redirect=%2F", "Confirm it is you")
	pre := d.sessionCookie()
	d.submit("choosing the app", chromedp.Click(chromedp.CSS("#factor-totp")))
	code, err := state.TOTPPolicy{}.Defaults().Code("JBSWY3DPEHPK3PXP", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.submit("entering the code", chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#verify")))
	d.landed(pre)
}

// gateStatusWithin asks the gate at base about the session id until it
// answers want or 5 s pass, and returns the last answer: another instance
// learns of a deletion through Redis pub/sub, which takes milliseconds (the
// bound is loose for a loaded CI machine).
func gateStatusWithin(t *testing.T, base, id string, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := gateStatus(t, base, id)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}
