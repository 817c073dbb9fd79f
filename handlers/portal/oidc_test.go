package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/internal/oidctest"
	"github.com/authsession/caddy-authsession/state"
)

// The relying party against a real OpenID Provider (zitadel's op package,
// see internal/oidctest) on loopback.

var (
	alice = oidctest.User{Sub: "Alice-Sub-1", Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true, Groups: []string{"staff", "dev"}}
	// mallory's verified mail is the users file's mailonly user's.
	mallory = oidctest.User{Sub: "mallory-sub", Username: "mallory", Password: "mallory-pw", Email: "m@example.com", EmailVerified: true}
	// eve claims the same mail, unverified.
	eve = oidctest.User{Sub: "eve-sub", Username: "eve", Password: "eve-pw", Email: "m@example.com"}
)

// events keeps the events emitted.
type events struct {
	ch chan handlers.Event
}

func (e *events) Emit(_ context.Context, ev handlers.Event) { e.ch <- ev }

func (e *events) find(name, reason string) (handlers.Event, bool) {
	for {
		select {
		case ev := <-e.ch:
			if ev.Name == name && (reason == "" || ev.Reason == reason) {
				return ev, true
			}
		default:
			return handlers.Event{}, false
		}
	}
}

type oidcFixture struct {
	*portalFixture
	op     *oidctest.Provider
	corp   *OIDCProvider
	events *events
}

// newOIDCFixture is the portal fixture (its clock at the real time, as
// the provider's tokens are) with the provider "corp" in front of a real
// provider holding alice, mallory and eve.
func newOIDCFixture(t *testing.T, edit func(*OIDCProvider)) *oidcFixture {
	t.Helper()
	f := &oidcFixture{portalFixture: newPortalFixture(t, ""), events: &events{ch: make(chan handlers.Event, 100)}}
	f.clk.Advance(time.Until(f.clk.Now()) * -1)
	f.op = oidctest.Start(t, alice, mallory, eve)
	f.op.AllowRedirect(f.srv.URL + "/auth/oidc/corp/callback")
	f.corp = &OIDCProvider{
		Name: "corp", Title: "Corp", Issuer: f.op.Issuer, ClientID: f.op.ClientID, ClientSecret: f.op.ClientSecret,
		Scopes: []string{"openid", "email", "profile", "groups"}, Backchannel: true,
	}
	if edit != nil {
		edit(f.corp)
	}
	f.portal.OIDC = []*OIDCProvider{f.corp}
	f.portal.Env.Events = f.events
	if err := f.portal.Init(); err != nil {
		t.Fatal(err)
	}
	return f
}

// abs fetches an absolute URL (the provider's pages).
func (b *browser) abs(method, u string, form url.Values) *http.Response {
	b.t.Helper()
	var r *http.Request
	if form != nil {
		r, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r, _ = http.NewRequest(method, u, nil)
	}
	return b.do(r)
}

// atProvider starts a sign-in with corp and signs in at the provider as
// u; it returns the callback URL the provider sends the browser back to,
// not yet fetched.
func (f *oidcFixture) atProvider(b *browser, u oidctest.User, redirect string) string {
	b.t.Helper()
	start := "/auth/oidc/corp/login"
	if redirect != "" {
		start += "?redirect=" + url.QueryEscape(redirect)
	}
	return f.atProviderFrom(b, u, start)
}

// atProviderFrom is atProvider from the sign-in start URL start.
func (f *oidcFixture) atProviderFrom(b *browser, u oidctest.User, start string) string {
	b.t.Helper()
	resp := b.get(start)
	wantStatus(b.t, resp, http.StatusFound, b.page)
	authz := resp.Header.Get("Location")
	if !strings.HasPrefix(authz, f.op.Issuer+"/authorize?") || !strings.Contains(authz, "code_challenge_method=S256") ||
		!strings.Contains(authz, "nonce=") || !strings.Contains(authz, "state=") {
		b.t.Fatalf("not a PKCE authorization request: %s", authz)
	}
	resp = b.abs(http.MethodGet, authz, nil)
	wantStatus(b.t, resp, http.StatusFound, b.page)
	login := resp.Header.Get("Location")
	lu, err := url.Parse(login)
	if err != nil || lu.Query().Get("id") == "" {
		b.t.Fatalf("provider sent to %q", login)
	}
	if !lu.IsAbs() {
		login = f.op.Issuer + login
	}
	resp = b.abs(http.MethodGet, login, nil)
	wantStatus(b.t, resp, http.StatusOK, b.page)
	resp = b.abs(http.MethodPost, f.op.Issuer+"/login", url.Values{
		"id": {lu.Query().Get("id")}, "username": {u.Username}, "password": {u.Password}, "action": {"login"},
	})
	wantStatus(b.t, resp, http.StatusFound, b.page)
	resp = b.abs(http.MethodGet, resp.Header.Get("Location"), nil)
	wantStatus(b.t, resp, http.StatusFound, b.page)
	cb := resp.Header.Get("Location")
	if !strings.HasPrefix(cb, f.srv.URL+"/auth/oidc/corp/callback?") {
		b.t.Fatalf("provider sent back to %q", cb)
	}
	return cb
}

// session returns the browser's session record.
func (f *oidcFixture) session(t *testing.T, b *browser) *state.Session {
	t.Helper()
	id := b.cookie()
	if id == "" {
		t.Fatal("the browser has no session cookie")
	}
	s, err := f.store.Get(context.Background(), state.KeyOf(id))
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return s
}

// noSession fails if the browser has a live session.
func (f *oidcFixture) noSession(t *testing.T, b *browser) {
	t.Helper()
	if id := b.cookie(); id != "" {
		if _, err := f.store.Get(context.Background(), state.KeyOf(id)); err == nil {
			t.Fatal("the browser has a session")
		}
	}
}

func TestOIDCSignIn(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	b.get("/auth/login")
	if !strings.Contains(b.page, `href="/auth/oidc/corp/login"`) || !strings.Contains(b.page, "Sign in with Corp") || !strings.Contains(b.page, `name="password"`) {
		t.Fatalf("sign-in page lacks the provider button or the password form:\n%s", b.page)
	}
	// A former session of the browser does not survive the sign-in.
	b.signIn("demo", "")
	former := b.cookie()

	resp := b.abs(http.MethodGet, f.atProvider(b, alice, "/app?x=1"), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app?x=1")
	if _, err := f.store.Get(context.Background(), state.KeyOf(former)); err == nil {
		t.Fatal("the former session is still there")
	}
	s := f.session(t, b)
	if s.UserID != "corp:alice-sub-1" || s.LoginName != "alice" || s.GroupName != "staff" || !s.Authenticated(f.clk.Now()) {
		t.Fatalf("session %+v", s)
	}
	if len(s.Factors) != 1 || s.Factors[0] != "OIDC:corp" {
		t.Fatalf("factors %v", s.Factors)
	}
	a := s.UserAttributes
	if a["oidc_provider"] != "corp" || a["oidc_sub"] != alice.Sub || a["oidc_sid"] != f.op.LastSID(alice.Sub) || a["oidc_sid"] == "" ||
		a["groups"] != "staff,dev" || a["mail"] != alice.Email {
		t.Fatalf("attributes %v", a)
	}
	resp = b.get("/app")
	wantStatus(t, resp, http.StatusOK, b.page)
	if b.page != "hello alice" {
		t.Fatalf("app says %q", b.page)
	}
	if _, ok := f.events.find(handlers.EventSessionAuthenticated, ""); !ok {
		t.Fatal("no session_authenticated event")
	}
	// The user's sessions are found under the user key, as any other's.
	all, err := f.store.ByUser(context.Background(), "corp:alice-sub-1")
	if err != nil || len(all) != 1 {
		t.Fatalf("by user: %v %v", all, err)
	}
}

func TestOIDCOnlyProvidersHidesThePasswordForm(t *testing.T) {
	f := newOIDCFixture(t, nil)
	f.portal.NoPasswords = true
	b := f.browser(t)
	b.get("/auth/login?redirect=/app")
	if strings.Contains(b.page, `name="password"`) || !strings.Contains(b.page, `href="/auth/oidc/corp/login?redirect=%2Fapp"`) {
		t.Fatalf("page:\n%s", b.page)
	}
}

func TestOIDCWrongState(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	cb := f.atProvider(b, alice, "")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	resp := b.abs(http.MethodGet, u.String(), nil)
	wantStatus(t, resp, http.StatusBadRequest, b.page)
	if !strings.Contains(b.page, "does not match") {
		t.Fatalf("page:\n%s", b.page)
	}
	f.noSession(t, b)
	if _, ok := f.events.find(handlers.EventLoginFailed, "state"); !ok {
		t.Fatal("no login_failed event")
	}
	// The pending sign-in was spent by the wrong answer: the right one
	// no longer works either.
	resp = b.abs(http.MethodGet, cb, nil)
	wantStatus(t, resp, http.StatusBadRequest, b.page)
	f.noSession(t, b)

	// A callback in a browser that never started a sign-in fails too.
	cb = f.atProvider(b, alice, "")
	other := f.browser(t)
	resp = other.abs(http.MethodGet, cb, nil)
	wantStatus(t, resp, http.StatusBadRequest, other.page)
	if !strings.Contains(other.page, "expired or was already used") {
		t.Fatalf("page:\n%s", other.page)
	}
}

func TestOIDCReplayedCallbackAndCode(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	cb := f.atProvider(b, alice, "")
	resp := b.abs(http.MethodGet, cb, nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	first := b.cookie()

	// The same callback again: the pending sign-in is gone.
	resp = b.abs(http.MethodGet, cb, nil)
	wantStatus(t, resp, http.StatusBadRequest, b.page)
	if b.cookie() != first {
		t.Fatal("the replay changed the session")
	}

	// The same code under a fresh, valid state: the provider refuses it.
	resp = b.get("/auth/oidc/corp/login")
	wantStatus(t, resp, http.StatusFound, b.page)
	authz, _ := url.Parse(resp.Header.Get("Location"))
	old, _ := url.Parse(cb)
	q := old.Query()
	q.Set("state", authz.Query().Get("state"))
	old.RawQuery = q.Encode()
	resp = b.abs(http.MethodGet, old.String(), nil)
	wantStatus(t, resp, http.StatusBadGateway, b.page)
	if _, ok := f.events.find(handlers.EventLoginFailed, "code_exchange"); !ok {
		t.Fatal("no login_failed event for the refused code")
	}
}

func TestOIDCTamperedIDToken(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	f.op.SignWithUnpublishedKey(t, true)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	f.noSession(t, b)
	if _, ok := f.events.find(handlers.EventLoginFailed, "id_token"); !ok {
		t.Fatal("no login_failed event")
	}
	f.op.SignWithUnpublishedKey(t, false)
	resp = b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
}

func TestOIDCExpiredIDToken(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	f.op.SetIDTokenLifetime(-time.Minute)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	f.noSession(t, b)
	if !strings.Contains(b.page, "could not be verified") {
		t.Fatalf("page:\n%s", b.page)
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	// The old key is withdrawn: the next token names a key the relying
	// party has not seen, and it fetches the provider's keys again.
	f.op.RotateKey(t, false)
	b2 := f.browser(t)
	resp = b2.abs(http.MethodGet, f.atProvider(b2, alice, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b2.page)
	f.session(t, b2)
}

func TestOIDCProviderError(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	resp := b.get("/auth/oidc/corp/login")
	resp = b.abs(http.MethodGet, resp.Header.Get("Location"), nil)
	lu, _ := url.Parse(resp.Header.Get("Location"))
	resp = b.abs(http.MethodPost, f.op.Issuer+"/login", url.Values{"id": {lu.Query().Get("id")}, "action": {"cancel"}})
	wantStatus(t, resp, http.StatusFound, b.page)
	resp = b.abs(http.MethodGet, resp.Header.Get("Location"), nil)
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	if !strings.Contains(b.page, "access_denied") || !strings.Contains(b.page, "the user cancelled the sign-in") {
		t.Fatalf("page:\n%s", b.page)
	}
	f.noSession(t, b)
	// A forged error answer, in a browser that started no sign-in, does
	// not get its text onto our page.
	resp = b.get("/auth/oidc/corp/callback?error=access_denied&error_description=Call+555-0100+now&state=x")
	wantStatus(t, resp, http.StatusBadRequest, b.page)
	if strings.Contains(b.page, "555-0100") {
		t.Fatalf("the forged description is shown:\n%s", b.page)
	}
}

func TestOIDCUnknownProviderAndDiscoveryDown(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.Issuer = "http://127.0.0.1:1"; o.Timeout = 2 * time.Second })
	b := f.browser(t)
	wantStatus(t, b.get("/auth/oidc/nope/login"), http.StatusNotFound, b.page)
	start := time.Now()
	wantStatus(t, b.get("/auth/oidc/corp/login"), http.StatusServiceUnavailable, b.page)
	// Answered from memory the second time.
	wantStatus(t, b.get("/auth/oidc/corp/login"), http.StatusServiceUnavailable, b.page)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("discovery failures took %v", d)
	}
}

func TestOIDCAllowedGroups(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.AllowedGroups = []string{"admins", "dev"} })
	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if s := f.session(t, b); s.GroupName != "dev" {
		t.Fatalf("group %q", s.GroupName)
	}
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProvider(b, mallory, ""), nil)
	wantStatus(t, resp, http.StatusForbidden, b.page)
	f.noSession(t, b)
}

func TestOIDCLinkedUserSecondFactor(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.LinkByEmail = true })
	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, mallory, "/app"), nil)
	// mailonly has one factor, a code by mail: it is sent right away.
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=email&redirect=%2Fapp")
	pre := f.session(t, b)
	if pre.UserID != "mail-id" || pre.Authenticated(f.clk.Now()) {
		t.Fatalf("pre-auth session %+v", pre)
	}
	wantStatus(t, b.get("/app"), http.StatusFound, b.page)
	b.get("/auth/otp?factor=email")
	resp = b.post("/auth/otp", "factor", "email", "code", f.mail.last(t).Code, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	s := f.session(t, b)
	if s.Key == pre.Key || s.UserID != "mail-id" || s.LoginName != "mailonly" || !s.Authenticated(f.clk.Now()) {
		t.Fatalf("session %+v", s)
	}
	if strings.Join(s.Factors, ",") != "OIDC:corp,ChallengeEmail" || s.UserAttributes["oidc_sub"] != mallory.Sub {
		t.Fatalf("session %+v", s)
	}
	wantStatus(t, b.get("/app"), http.StatusOK, b.page)

	// An unverified mail links nobody: eve is her own provider user.
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProvider(b, eve, ""), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if s := f.session(t, b); s.UserID != "corp:eve-sub" {
		t.Fatalf("eve signed in as %q", s.UserID)
	}
}

func TestOIDCProviderUserTOTP(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.SecondFactor = SecondFactorRequired })
	b := f.browser(t)
	// Without a factor of ours, "required" refuses.
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusForbidden, b.page)
	f.noSession(t, b)

	// With a TOTP secret in alice's per-user state, she goes on to it.
	if _, err := f.store.UpdateUser(context.Background(), "corp:alice-sub-1", func(us *state.UserState) error {
		us.TOTPSecret = demoSecret
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp = b.abs(http.MethodGet, f.atProvider(b, alice, "/app"), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?redirect=%2Fapp")
	b.get("/auth/otp")
	if !strings.Contains(b.page, `name="code"`) {
		t.Fatalf("no TOTP form:\n%s", b.page)
	}
	code, err := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp = b.post("/auth/otp", "factor", "totp", "code", code, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	s := f.session(t, b)
	if strings.Join(s.Factors, ",") != "OIDC:corp,ChallengeOMATOTP" || !s.Authenticated(f.clk.Now()) {
		t.Fatalf("session %+v", s)
	}
	wantStatus(t, b.get("/app"), http.StatusOK, b.page)
}

// backchannel posts a logout token.
func (f *oidcFixture) backchannel(t *testing.T, token string) (int, map[string]string) {
	t.Helper()
	resp, err := http.PostForm(f.srv.URL+"/auth/oidc/corp/backchannel", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, body
}

func TestOIDCBackchannelLogout(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b1, b2 := f.browser(t), f.browser(t)
	wantStatus(t, b1.abs(http.MethodGet, f.atProvider(b1, alice, ""), nil), http.StatusSeeOther, b1.page)
	sid1 := f.op.LastSID(alice.Sub)
	wantStatus(t, b2.abs(http.MethodGet, f.atProvider(b2, alice, ""), nil), http.StatusSeeOther, b2.page)

	refused := []struct {
		name string
		c    oidctest.LogoutClaims
	}{
		{"nonce", oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1, Nonce: true}},
		{"no event", oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1, NoEvent: true}},
		{"audience", oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1, Audience: "someone-else"}},
		{"old iat", oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1, IssuedAt: time.Now().Add(-time.Hour)}},
		{"future iat", oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1, IssuedAt: time.Now().Add(time.Hour)}},
	}
	for _, c := range refused {
		if st, body := f.backchannel(t, f.op.LogoutToken(t, c.c)); st != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Fatalf("%s: %d %v", c.name, st, body)
		}
	}
	f.op.SignWithUnpublishedKey(t, true)
	if st, _ := f.backchannel(t, f.op.LogoutToken(t, oidctest.LogoutClaims{Sub: alice.Sub})); st != http.StatusBadRequest {
		t.Fatalf("unpublished key: %d", st)
	}
	f.op.SignWithUnpublishedKey(t, false)
	if st, _ := f.backchannel(t, "not-a-jwt"); st != http.StatusBadRequest {
		t.Fatalf("garbage: %d", st)
	}
	if st, _ := f.backchannel(t, ""); st != http.StatusBadRequest {
		t.Fatalf("empty: %d", st)
	}
	f.session(t, b1)
	f.session(t, b2)

	// sub and sid: only that provider session goes.
	tok := f.op.LogoutToken(t, oidctest.LogoutClaims{Sub: alice.Sub, SID: sid1})
	if st, body := f.backchannel(t, tok); st != http.StatusOK {
		t.Fatalf("logout: %d %v", st, body)
	}
	f.noSession(t, b1)
	f.session(t, b2)
	wantStatus(t, b1.get("/app"), http.StatusFound, b1.page)
	ev, ok := f.events.find(handlers.EventSessionRevoked, handlers.RevokedBackchannel)
	if !ok || ev.UserKey != "corp:alice-sub-1" {
		t.Fatalf("event %+v %v", ev, ok)
	}
	// The same token again is a replay.
	if st, body := f.backchannel(t, tok); st != http.StatusBadRequest || !strings.Contains(body["error_description"], "already used") {
		t.Fatalf("replay: %d %v", st, body)
	}
	// sid alone (the sessions are scanned).
	if st, _ := f.backchannel(t, f.op.LogoutToken(t, oidctest.LogoutClaims{SID: f.op.LastSID(alice.Sub)})); st != http.StatusOK {
		t.Fatalf("sid logout: %d", st)
	}
	f.noSession(t, b2)

	// sub alone: every session of the user.
	b3, b4 := f.browser(t), f.browser(t)
	wantStatus(t, b3.abs(http.MethodGet, f.atProvider(b3, alice, ""), nil), http.StatusSeeOther, b3.page)
	wantStatus(t, b4.abs(http.MethodGet, f.atProvider(b4, alice, ""), nil), http.StatusSeeOther, b4.page)
	if st, _ := f.backchannel(t, f.op.LogoutToken(t, oidctest.LogoutClaims{Sub: alice.Sub})); st != http.StatusOK {
		t.Fatalf("sub logout: %d", st)
	}
	f.noSession(t, b3)
	f.noSession(t, b4)
}

func TestOIDCBackchannelOff(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.Backchannel = false })
	if st, _ := f.backchannel(t, f.op.LogoutToken(t, oidctest.LogoutClaims{Sub: alice.Sub})); st != http.StatusNotFound {
		t.Fatalf("status %d", st)
	}
}

func TestOIDCRPInitiatedLogout(t *testing.T) {
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.EndSession = true })
	f.op.AllowPostLogoutRedirect(f.srv.URL + "/auth/login?signed_out=1")
	b := f.browser(t)
	wantStatus(t, b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil), http.StatusSeeOther, b.page)
	resp := b.get("/auth/logout")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+f.op.Issuer) {
		t.Fatalf("CSP %q", csp)
	}
	resp = b.post("/auth/logout")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, f.op.Issuer+"/end_session?") || !strings.Contains(loc, "client_id=authsession") {
		t.Fatalf("Location %q", loc)
	}
	f.noSession(t, b)
	resp = b.abs(http.MethodGet, loc, nil)
	wantStatus(t, resp, http.StatusFound, b.page)
	wantLocation(t, resp, f.srv.URL+"/auth/login?signed_out=1")
	if f.op.EndSessions() != 1 {
		t.Fatalf("end sessions %d", f.op.EndSessions())
	}
}

func TestOIDCAbandonedSignInsAreLimited(t *testing.T) {
	f := newOIDCFixture(t, nil)
	f.portal.Limiter = &FailureLimiter{Max: 3, Window: 5 * time.Minute}
	b := f.browser(t)
	// Completed sign-ins give their attempt back.
	for range 4 {
		wantStatus(t, b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil), http.StatusSeeOther, b.page)
	}
	// Abandoned ones are failures of the client IP.
	for range 3 {
		wantStatus(t, b.get("/auth/oidc/corp/login"), http.StatusFound, b.page)
	}
	resp := b.get("/auth/oidc/corp/login")
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// tamperer rewrites the ID token in the provider's token answers: the
// payload's sub is changed, the signature kept.
type tamperer struct{ on bool }

func (tp *tamperer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !tp.on || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return resp, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	parts := strings.Split(body["id_token"].(string), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	claims["sub"] = "someone-else"
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	body["id_token"] = strings.Join(parts, ".")
	b, _ := json.Marshal(body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func TestOIDCModifiedIDTokenPayload(t *testing.T) {
	tp := &tamperer{}
	f := newOIDCFixture(t, func(o *OIDCProvider) { o.HTTPClient = &http.Client{Transport: tp, Timeout: 10 * time.Second} })
	b := f.browser(t)
	wantStatus(t, b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil), http.StatusSeeOther, b.page)
	tp.on = true
	b = f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	f.noSession(t, b)
	if _, ok := f.events.find(handlers.EventLoginFailed, "id_token"); !ok {
		t.Fatal("no login_failed event")
	}
}

// TestOIDCSubjectsDifferingInCase: user keys fold letter case and a
// provider's subjects do not, so two accounts whose subjects differ only
// in case map to one key. The first to sign in holds it; the other is
// refused (403, nothing opened, login_failed subject_conflict) instead of
// becoming the same user here, with the first one's sessions, factors and
// upstream identity.
func TestOIDCSubjectsDifferingInCase(t *testing.T) {
	f := newOIDCFixture(t, nil)
	upper := oidctest.User{Sub: "Case-Sub-7", Username: "upper", Password: "upper-pw", Email: "upper@example.com"}
	lower := oidctest.User{Sub: "case-sub-7", Username: "lower", Password: "lower-pw", Email: "lower@example.com"}
	f.op.AddUser(upper)
	f.op.AddUser(lower)

	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, upper, "/app"), nil)
	wantLocation(t, resp, "/app")
	first := f.session(t, b)

	c := f.browser(t)
	c.ip = "192.0.2.77"
	resp = c.abs(http.MethodGet, f.atProvider(c, lower, "/app"), nil)
	wantStatus(t, resp, http.StatusForbidden, c.page)
	f.noSession(t, c)
	if ev, ok := f.events.find(handlers.EventLoginFailed, "subject_conflict"); !ok || ev.UserKey != first.UserID {
		t.Fatalf("no login_failed subject_conflict for %s: %+v", first.UserID, ev)
	}
	// The first account still signs in, as itself.
	b = f.browser(t)
	resp = b.abs(http.MethodGet, f.atProvider(b, upper, "/app"), nil)
	wantLocation(t, resp, "/app")
	if s := f.session(t, b); s.UserID != first.UserID || s.UserAttributes["oidc_sub"] != upper.Sub {
		t.Fatalf("the first account's second sign-in: %+v", s)
	}
}
