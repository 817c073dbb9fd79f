package portal

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// deviceCookie returns the browser's trusted-device cookie, or "".
func (b *browser) deviceCookie() string {
	u, _ := url.Parse(b.f.srv.URL + "/auth/login")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "authsession_device" {
			return c.Value
		}
	}
	return ""
}

// totpCode completes the TOTP factor for a browser left by signIn, with
// the trust box ticked or not, at the fixture's current time.
func (b *browser) totpCode(trust bool) *http.Response {
	b.t.Helper()
	code, err := b.f.portal.TOTP.Code(demoSecret, b.f.clk.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	b.get("/auth/otp?factor=totp")
	kv := []string{"factor", "totp", "code", code}
	if trust {
		kv = append(kv, "trust", "1")
	}
	return b.post("/auth/otp", kv...)
}

func TestPortalTrustThisDevice(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signIn("totponly", "")
	b.get("/auth/otp?factor=totp")
	if strings.Contains(b.page, `name="trust"`) {
		t.Fatal("the trust option is offered while TrustFor is 0")
	}
	f.portal.TrustFor = 30 * 24 * time.Hour
	b.get("/auth/otp?factor=totp")
	if !strings.Contains(b.page, `name="trust"`) || !strings.Contains(b.page, "for 30 days") {
		t.Fatalf("no trust option:\n%s", b.page)
	}

	// Not ticked: no device cookie, next sign-in asks for the factor.
	resp := b.totpCode(false)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if b.deviceCookie() != "" {
		t.Fatal("device trusted without the box ticked")
	}

	// Ticked: the browser is trusted; the user's record keeps a hash only.
	f.clk.Advance(31 * time.Second) // a fresh TOTP step
	b = f.browser(t)
	b.signIn("totponly", "")
	resp = b.totpCode(true)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	token := b.deviceCookie()
	if token == "" {
		t.Fatal("no device cookie after trust")
	}
	for _, c := range resp.Cookies() {
		if c.Name == "authsession_device" && (!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/auth" || c.MaxAge != 30*24*3600) {
			t.Fatalf("device cookie attributes: %+v", c)
		}
	}
	us, err := f.store.GetUser(context.Background(), "totp-id")
	if err != nil || len(us.Devices) != 1 || strings.Contains(us.Devices[0].ID, token) ||
		!us.Devices[0].Until.Equal(f.clk.Now().Add(30*24*time.Hour)) {
		t.Fatalf("user state %+v, %v", us, err)
	}

	// Signed out, then back: the password alone authenticates, under a new id.
	old := b.cookie()
	b.get("/auth/logout")
	b.post("/auth/logout")
	b.get("/auth/login")
	resp = b.post("/auth/login", "login", "totponly", "password", demoPassword, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
	s, err := f.store.Get(context.Background(), state.KeyOf(b.cookie()))
	if err != nil || b.cookie() == old || s.Status != state.StatusAuthenticated ||
		!slices.Equal(s.Factors, []string{FactorTrustedDevice}) {
		t.Fatalf("trusted sign-in: %+v, %v", s, err)
	}
	b.get("/app")
	if b.page != "hello totponly" {
		t.Fatalf("gate after trusted sign-in: %q", b.page)
	}
	// A wrong password is still refused on a trusted browser.
	w := f.browser(t)
	au, _ := url.Parse(f.srv.URL + "/auth/")
	w.c.Jar.SetCookies(au, []*http.Cookie{{Name: "authsession_device", Value: token, Path: "/auth"}})
	w.get("/auth/login")
	resp = w.post("/auth/login", "login", "totponly", "password", "nope")
	wantStatus(t, resp, http.StatusUnauthorized, w.page)

	// Another browser, or a forged token, still needs the factor.
	for name, tok := range map[string]string{"none": "", "forged": state.NewID()} {
		o := f.browser(t)
		if tok != "" {
			u, _ := url.Parse(f.srv.URL + "/auth/")
			o.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authsession_device", Value: tok, Path: "/auth"}})
		}
		o.get("/auth/login")
		resp = o.post("/auth/login", "login", "totponly", "password", demoPassword)
		wantStatus(t, resp, http.StatusSeeOther, o.page)
		if resp.Header.Get("Location") != "/auth/otp" {
			t.Fatalf("%s device token: Location %q", name, resp.Header.Get("Location"))
		}
	}

	// The trust ends after TrustFor.
	f.clk.Advance(30*24*time.Hour + time.Second)
	b = f.browser(t)
	b.c.Jar.SetCookies(au, []*http.Cookie{{Name: "authsession_device", Value: token, Path: "/auth"}})
	b.get("/auth/login")
	resp = b.post("/auth/login", "login", "totponly", "password", demoPassword)
	wantLocation(t, resp, "/auth/otp")

	// Trusted again, then "sign out everywhere" forgets the browser.
	resp = b.totpCode(true)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	b.get("/auth/sessions")
	if !strings.Contains(b.page, `id="trusted-devices"`) {
		t.Fatalf("sessions page does not mention the trusted browser:\n%s", b.page)
	}
	resp = b.post("/auth/sessions/revoke", "all", "1")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	if us, _ := f.store.GetUser(context.Background(), "totp-id"); len(us.Devices) != 0 {
		t.Fatalf("devices left after signing out everywhere: %+v", us.Devices)
	}
	b.get("/auth/login")
	resp = b.post("/auth/login", "login", "totponly", "password", demoPassword)
	wantLocation(t, resp, "/auth/otp")
}

func TestPortalSMSWebhookFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.get("/auth/login")
	// smsonly's only factor is a code by SMS: it is sent right away.
	resp := b.post("/auth/login", "login", "smsonly", "password", demoPassword, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/otp?factor=sms&redirect=%2Fapp")
	m := f.mail.last(t)
	if m.Channel != delivery.ChannelSMS || m.To != "+1 555 0100 1234" || len(m.Code) != 6 {
		t.Fatalf("message %+v", m)
	}
	b.get("/auth/otp?factor=sms&redirect=%2Fapp")
	if !strings.Contains(b.page, "***-***-1234") || !strings.Contains(b.page, "text message") {
		t.Fatalf("SMS page:\n%s", b.page)
	}
	resp = b.post("/auth/otp", "factor", "sms", "code", "000000", "redirect", "/app")
	wantStatus(t, resp, http.StatusUnauthorized, b.page)
	resp = b.post("/auth/otp", "factor", "sms", "code", m.Code, "redirect", "/app")
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
	s, err := f.store.Get(context.Background(), state.KeyOf(b.cookie()))
	if err != nil || !slices.Equal(s.Factors, []string{state.FactorSMS}) {
		t.Fatalf("session %+v, %v", s, err)
	}

	// Without an SMS channel the user has no usable factor.
	f.portal.Channels = func(ch string) bool { return ch == delivery.ChannelEmail }
	o := f.browser(t)
	o.get("/auth/login")
	resp = o.post("/auth/login", "login", "smsonly", "password", demoPassword)
	wantStatus(t, resp, http.StatusForbidden, o.page)
	// And mail users cannot ask for an SMS.
	o.signIn("mailonly", "")
	o.get("/auth/otp")
	resp = o.post("/auth/otp/send", "factor", "sms")
	wantStatus(t, resp, http.StatusBadRequest, o.page)
}

// TestPortalNewPasswordEndsTrust: a browser trusted under the old password
// (or the old TOTP secret) must pass the second factor again after it
// changes.
func TestPortalNewPasswordEndsTrust(t *testing.T) {
	f := newPortalFixture(t, "")
	f.portal.TrustFor = 30 * 24 * time.Hour
	b := f.browser(t)
	b.signIn("totponly", "")
	wantStatus(t, b.totpCode(true), http.StatusSeeOther, b.page)
	token := b.deviceCookie()
	au, _ := url.Parse(f.srv.URL + "/auth/")
	signInWith := func(password string) *http.Response {
		o := f.browser(t)
		o.c.Jar.SetCookies(au, []*http.Cookie{{Name: "authsession_device", Value: token, Path: "/auth"}})
		o.get("/auth/login")
		return o.post("/auth/login", "login", "totponly", "password", password)
	}
	if resp := signInWith(demoPassword); resp.Header.Get("Location") != "/" {
		t.Fatalf("trusted browser, same password: Location %q, want /", resp.Header.Get("Location"))
	}

	// The administrator sets a new password (the users file is reloaded).
	hash, err := bcrypt.GenerateFromPassword([]byte("new-password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(`{"users":[{"id":"totp-id","login":"totponly","password_hash":"`+string(hash)+
		`","totp_secret":"`+demoSecret+`","factors":["ChallengeOMATOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f.portal.Users = users.Directory("UserIdentityStore1")
	if resp := signInWith("new-password"); resp.Header.Get("Location") != "/auth/otp" {
		t.Fatalf("trusted browser, new password: Location %q, want the second factor", resp.Header.Get("Location"))
	}

	// Trusted again under the new password, then the TOTP secret is
	// enrolled anew: the trust ends too.
	b = f.browser(t)
	b.get("/auth/login")
	wantStatus(t, b.post("/auth/login", "login", "totponly", "password", "new-password"), http.StatusSeeOther, b.page)
	f.clk.Advance(31 * time.Second)
	wantStatus(t, b.totpCode(true), http.StatusSeeOther, b.page)
	token = b.deviceCookie()
	if resp := signInWith("new-password"); resp.Header.Get("Location") != "/" {
		t.Fatalf("trusted again: Location %q, want /", resp.Header.Get("Location"))
	}
	if err := os.WriteFile(p, []byte(`{"users":[{"id":"totp-id","login":"totponly","password_hash":"`+string(hash)+
		`","totp_secret":"KRSXG5CTMVRXEZLU","factors":["ChallengeOMATOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err = state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f.portal.Users = users.Directory("UserIdentityStore1")
	if resp := signInWith("new-password"); resp.Header.Get("Location") != "/auth/otp" {
		t.Fatalf("trusted browser, new TOTP secret: Location %q, want the second factor", resp.Header.Get("Location"))
	}
}
