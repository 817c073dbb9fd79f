package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/internal/webauthntest"
	"github.com/authsession/caddy-authsession/state"
)

// withPasskeys turns passkeys on for the fixture and returns a software
// authenticator for its origin.
func withPasskeys(t *testing.T, f *portalFixture) *webauthntest.Authenticator {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	origin := "http://localhost:" + u.Port()
	p, err := handlers.NewPasskeys(handlers.PasskeyConfig{RPID: "localhost", Origins: []string{origin}, UserVerification: "required"})
	if err != nil {
		t.Fatal(err)
	}
	f.portal.Passkeys = p
	return webauthntest.New(origin, "localhost")
}

// postJSON posts a form to a JSON endpoint and decodes the answer.
func (b *browser) postJSON(path string, kv ...string) (int, ceremonyAnswer) {
	b.t.Helper()
	resp := b.post(path, kv...)
	var a ceremonyAnswer
	if err := json.Unmarshal([]byte(b.page), &a); err != nil {
		b.t.Fatalf("%s: %d not JSON: %s", path, resp.StatusCode, b.page)
	}
	return resp.StatusCode, a
}

// signedIn signs demo in with a mailed code.
func (b *browser) signedIn() {
	b.t.Helper()
	b.signIn("demo", "/")
	wantStatus(b.t, b.mailCode(), http.StatusSeeOther, b.page)
}

// addPasskey registers a on the account page.
func (b *browser) addPasskey(a *webauthntest.Authenticator, name string, extra ...string) *http.Response {
	b.t.Helper()
	b.get("/auth/account")
	csrf := b.csrf()
	code, ans := b.postJSON("/auth/account/passkey/options", "name", name)
	if code != 200 || ans.Ceremony == "" {
		b.t.Fatalf("options: %d %+v", code, ans)
	}
	cred, err := a.Register(ans.Options)
	if err != nil {
		b.t.Fatal(err)
	}
	kv := append([]string{"csrf", csrf, "ceremony", ans.Ceremony, "credential", string(cred)}, extra...)
	return b.post("/auth/account/passkey", kv...)
}

// usePasskey answers the factor page with the passkey (answer made by
// mk from the request options).
func (b *browser) usePasskey(mk func(opts []byte) []byte) *http.Response {
	b.t.Helper()
	b.get("/auth/otp?factor=passkey")
	csrf := b.csrf()
	code, ans := b.postJSON("/auth/otp/passkey/options")
	if code != 200 {
		b.t.Fatalf("options: %d %+v", code, ans)
	}
	return b.post("/auth/otp", "csrf", csrf, "factor", "passkey", "ceremony", ans.Ceremony, "credential", string(mk(ans.Options)), "redirect", "/")
}

func TestAccountPasskeySecondFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	a := withPasskeys(t, f)
	ev := &eventLog{}
	f.portal.Env.Events = ev
	b := f.browser(t)
	wantLocation(t, b.get("/auth/account"), "/auth/login?redirect=%2Fauth%2Faccount")
	b.signedIn()
	resp := b.addPasskey(a, "Work laptop")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	b.get("/auth/account?done=passkey-added")
	if !strings.Contains(b.page, "Work laptop") || !strings.Contains(b.page, "The passkey was added.") {
		t.Fatalf("account page:\n%s", b.page)
	}
	if got := ev.names(); !strings.Contains(got, "factor_enrolled:ChallengeFIDO2") {
		t.Errorf("events %s", got)
	}

	// A new browser: password, then the passkey.
	c := f.browser(t)
	c.signIn("demo", "/")
	c.get("/auth/otp")
	if !strings.Contains(c.page, "Use a passkey") {
		t.Fatalf("the factor page does not offer the passkey:\n%s", c.page)
	}
	// A wrong origin is refused and counted.
	resp = c.usePasskey(func(o []byte) []byte {
		bad := a.Clone()
		bad.Origin = "http://localhost:1"
		out, _ := bad.Assert(o)
		return out
	})
	wantStatus(t, resp, http.StatusUnauthorized, c.page)
	us, _ := f.store.GetUser(t.Context(), "demo-id")
	if n := len(us.Attempts[state.FactorFIDO2].Times); n != 1 {
		t.Errorf("%d passkey attempts counted, want 1", n)
	}
	// The right one signs in, with the factor recorded.
	resp = c.usePasskey(func(o []byte) []byte { out, _ := a.Assert(o); return out })
	wantStatus(t, resp, http.StatusSeeOther, c.page)
	wantLocation(t, resp, "/")
	s, err := f.store.Get(t.Context(), state.KeyOf(c.cookie()))
	if err != nil || s.Status != state.StatusAuthenticated || !strings.Contains(strings.Join(s.Factors, ","), state.FactorFIDO2) {
		t.Fatalf("session after the passkey: %+v %v", s, err)
	}

	// Six minutes on, removing it needs the password.
	f.clk.Advance(6 * time.Minute)
	c.get("/auth/account")
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(c.page)
	if id == nil || !strings.Contains(c.page, "Current password") {
		t.Fatalf("account page without step-up:\n%s", c.page)
	}
	wantStatus(t, c.post("/auth/account/passkey/remove", "id", id[1]), http.StatusForbidden, c.page)
	c.get("/auth/account")
	wantStatus(t, c.post("/auth/account/passkey/remove", "id", id[1], "password", "wrong-password"), http.StatusForbidden, c.page)
	c.get("/auth/account")
	wantStatus(t, c.post("/auth/account/passkey/remove", "id", id[1], "password", demoPassword), http.StatusSeeOther, c.page)
	if us, _ := f.store.GetUser(t.Context(), "demo-id"); len(us.Passkeys) != 0 {
		t.Error("the passkey is still registered")
	}
	if got := ev.names(); !strings.Contains(got, "factor_removed:ChallengeFIDO2") {
		t.Errorf("events %s", got)
	}
	// Gone: not offered, and refused when forced.
	d := f.browser(t)
	d.signIn("demo", "/")
	d.get("/auth/otp")
	if strings.Contains(d.page, "Use a passkey") {
		t.Error("a removed passkey is still offered")
	}
	wantStatus(t, d.post("/auth/otp", "factor", "passkey", "ceremony", "x", "credential", "{}"), http.StatusBadRequest, d.page)
}

// TestAccountPasskeyNeedsStepUp: adding a passkey long after the last
// factor needs the password; a registration answer made for another
// session's ceremony is refused.
func TestAccountPasskeyNeedsStepUp(t *testing.T) {
	f := newPortalFixture(t, "")
	a := withPasskeys(t, f)
	b := f.browser(t)
	b.signedIn()
	f.clk.Advance(StepUpWindow)
	wantStatus(t, b.addPasskey(a, "late"), http.StatusForbidden, b.page)
	wantStatus(t, b.addPasskey(a, "late", "password", demoPassword), http.StatusSeeOther, b.page)
	// Another browser of the same user cannot finish b's ceremony.
	c := f.browser(t)
	c.signedIn()
	b.get("/auth/account")
	_, ans := b.postJSON("/auth/account/passkey/options", "name", "stolen")
	cred, _ := webauthntest.New(a.Origin, a.RPID).Register(ans.Options)
	c.get("/auth/account")
	wantStatus(t, c.post("/auth/account/passkey", "ceremony", ans.Ceremony, "credential", string(cred)), http.StatusBadRequest, c.page)
	if us, _ := f.store.GetUser(t.Context(), "demo-id"); len(us.Passkeys) != 1 {
		t.Errorf("%d passkeys registered, want 1", len(us.Passkeys))
	}
}

var codeRE = regexp.MustCompile(`<code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code>`)

func TestRecoveryCodesSecondFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signedIn()
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
	codes := codeRE.FindAllStringSubmatch(b.page, -1)
	if len(codes) != state.RecoveryCodeCount {
		t.Fatalf("%d codes shown:\n%s", len(codes), b.page)
	}
	b.get("/auth/account")
	if codeRE.MatchString(b.page) || !strings.Contains(b.page, fmt.Sprintf("%d unused code(s)", state.RecoveryCodeCount)) {
		t.Fatalf("the codes are shown again:\n%s", b.page)
	}
	use := func(code string) *http.Response {
		c := f.browser(t)
		c.signIn("demo", "/")
		c.get("/auth/otp?factor=recovery")
		return c.post("/auth/otp", "factor", "recovery", "code", code, "redirect", "/")
	}
	first := codes[0][1]
	wantStatus(t, use(strings.ToUpper(first)), http.StatusSeeOther, "")
	wantStatus(t, use(first), http.StatusUnauthorized, "")
	wantStatus(t, use("aaaa-bbbb-cccc-dddd"), http.StatusUnauthorized, "")
	// A new set revokes the old one.
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
	newCodes := codeRE.FindAllStringSubmatch(b.page, -1)
	wantStatus(t, use(codes[1][1]), http.StatusUnauthorized, "")
	wantStatus(t, use(newCodes[0][1]), http.StatusSeeOther, "")
	// No code ever reaches the log.
	for _, e := range f.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, c := range append(codes, newCodes...) {
			if strings.Contains(line, c[1]) || strings.Contains(line, strings.ReplaceAll(c[1], "-", "")) {
				t.Fatalf("a recovery code is in the log: %s", line)
			}
		}
	}
}

// eventLog keeps the events emitted.
type eventLog struct {
	evs []handlers.Event
}

func (e *eventLog) Emit(_ context.Context, ev handlers.Event) { e.evs = append(e.evs, ev) }

func (e *eventLog) names() string {
	var out []string
	for _, ev := range e.evs {
		out = append(out, ev.Name+":"+ev.Factor)
	}
	return strings.Join(out, " ")
}

func TestPasswordlessSignIn(t *testing.T) {
	f := newPortalFixture(t, "")
	a := withPasskeys(t, f)
	f.portal.Passkeys.Config.Passwordless = true
	b := f.browser(t)
	b.signedIn()
	wantStatus(t, b.addPasskey(a, "phone"), http.StatusSeeOther, b.page)

	start := func(c *browser) (ceremonyAnswer, string) {
		t.Helper()
		c.get("/auth/login?redirect=%2F")
		if !strings.Contains(c.page, "Sign in with a passkey") || !strings.Contains(c.page, `autocomplete="username webauthn"`) {
			t.Fatalf("login page without the passkey sign-in:\n%s", c.page)
		}
		csrf := c.csrf()
		code, ans := c.postJSON("/auth/login/passkey/options")
		if code != 200 || ans.Ceremony == "" || ans.Error != "" {
			t.Fatalf("options: %d %+v", code, ans)
		}
		ans.Error = csrf // the page's token, for the form
		return ans, c.cookie()
	}
	c := f.browser(t)
	ans, _ := start(c)
	// Without user verification a passkey does not sign in alone.
	noUV := a.Clone()
	noUV.Flags = webauthntest.FlagUserPresent
	cred, _ := noUV.Assert(ans.Options)
	wantStatus(t, c.post("/auth/login/passkey", "csrf", ans.Error, "ceremony", ans.Ceremony, "credential", string(cred), "redirect", "/"), http.StatusUnauthorized, c.page)

	ans, pre := start(c)
	cred, _ = a.Assert(ans.Options)
	resp := c.post("/auth/login/passkey", "csrf", ans.Error, "ceremony", ans.Ceremony, "credential", string(cred), "redirect", "/")
	wantStatus(t, resp, http.StatusSeeOther, c.page)
	wantLocation(t, resp, "/")
	if c.cookie() == pre || c.cookie() == ans.Ceremony {
		t.Error("the session id was not rotated")
	}
	// The start's session ended with its ceremony; the signed-in one
	// lives its full lifetime.
	if s, err := f.store.Get(t.Context(), state.KeyOf(c.cookie())); err != nil ||
		!s.ExpiryTime.Equal(f.clk.Now().Add(f.portal.Env.Policy.Lifetime)) {
		t.Errorf("signed-in session: %+v %v, want a full lifetime", s, err)
	}
	// The ceremony's session is gone: its id signs nothing in.
	if _, err := f.store.Get(t.Context(), state.KeyOf(ans.Ceremony)); err == nil {
		t.Error("the ceremony's session outlived the sign-in")
	}
	c.get("/")
	if c.page != "hello demo" {
		t.Fatalf("the gate answers %q", c.page)
	}
	// The same answer again: its ceremony is spent.
	d := f.browser(t)
	ans2, _ := start(d)
	wantStatus(t, d.post("/auth/login/passkey", "csrf", ans2.Error, "ceremony", ans2.Ceremony, "credential", string(cred), "redirect", "/"), http.StatusUnauthorized, d.page)
	// Off: no button, and the endpoints refuse.
	f.portal.Passkeys.Config.Passwordless = false
	e := f.browser(t)
	e.get("/auth/login")
	if strings.Contains(e.page, "Sign in with a passkey") {
		t.Error("the passkey sign-in is offered while off")
	}
	if code, _ := e.postJSON("/auth/login/passkey/options"); code != http.StatusNotFound {
		t.Errorf("options while off: %d", code)
	}
}
