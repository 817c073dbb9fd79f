package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

var (
	totpSecretRE   = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	totpCeremonyRE = regexp.MustCompile(`action="/auth/account/totp" id="confirm-totp">\s*<input type="hidden" name="csrf" value="[^"]*">\s*<input type="hidden" name="ceremony" value="([^"]+)">`)
)

// newTOTP starts an enrolment on the account page and returns the
// ceremony and the secret shown.
func (b *browser) newTOTP() (ceremony, secret string) {
	b.t.Helper()
	b.get("/auth/account")
	wantStatus(b.t, b.post("/auth/account/totp/new"), http.StatusOK, b.page)
	if !strings.Contains(b.page, `src="data:image/png;base64,`) {
		b.t.Fatalf("no QR code:\n%s", b.page)
	}
	s, c := totpSecretRE.FindStringSubmatch(b.page), totpCeremonyRE.FindStringSubmatch(b.page)
	if s == nil || c == nil {
		b.t.Fatalf("no secret or ceremony:\n%s", b.page)
	}
	return c[1], s[1]
}

// fileTOTP returns the users-file secret of id.
func (f *portalFixture) fileTOTP(t *testing.T, id string) string {
	t.Helper()
	u, ok := state.UsersFileOf(f.portal.Users).ByID(id)
	if !ok {
		t.Fatalf("no user %s", id)
	}
	return u.TOTPSecret
}

// wrongCode returns a code that is not secret's at now.
func wrongCode(t *testing.T, p *Portal, secret string, now time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "111111"} {
		ok := false
		for _, d := range []time.Duration{-p.TOTP.Period, 0, p.TOTP.Period} {
			if right, _ := p.TOTP.Code(secret, now.Add(d)); right == c {
				ok = true
			}
		}
		if !ok {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

func TestAccountTOTPEnrolReplaceRemove(t *testing.T) {
	f := newPortalFixture(t, "")
	ev := &eventLog{}
	f.portal.Env.Events = ev
	b := f.browser(t)
	b.signedIn()
	b.get("/auth/account")
	if !strings.Contains(b.page, "Your authenticator app is set up.") {
		t.Fatalf("account page:\n%s", b.page)
	}

	// Another session of the same user cannot confirm b's pending secret,
	// even with a right code (and the attempt burns it).
	cer, secret := b.newTOTP()
	c := f.browser(t)
	c.signedIn()
	c.get("/auth/account")
	code, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, c.post("/auth/account/totp", "ceremony", cer, "code", code), http.StatusBadRequest, c.page)
	if got := f.fileTOTP(t, "demo-id"); got != demoSecret {
		t.Fatalf("the secret changed to %q", got)
	}

	// A wrong code changes nothing and keeps the secret pending.
	cer, secret = b.newTOTP()
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", wrongCode(t, f.portal, secret, f.clk.Now())), http.StatusUnauthorized, b.page)
	if got := f.fileTOTP(t, "demo-id"); got != demoSecret {
		t.Fatalf("a wrong code changed the secret to %q", got)
	}
	if m := totpCeremonyRE.FindStringSubmatch(b.page); m == nil || m[1] != cer || !strings.Contains(b.page, secret) {
		t.Fatalf("the pending secret is not shown again:\n%s", b.page)
	}
	if strings.Contains(ev.names(), "factor_enrolled") {
		t.Fatalf("events %s", ev.names())
	}
	// The right code makes it the user's secret; the ceremony is spent.
	code, _ = f.portal.TOTP.Code(secret, f.clk.Now())
	resp := b.post("/auth/account/totp", "ceremony", cer, "code", code)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/account?done=totp-replaced")
	if got := f.fileTOTP(t, "demo-id"); got != secret {
		t.Fatalf("secret %q, want %q", got, secret)
	}
	reloaded, err := state.LoadUsers(state.UsersFileOf(f.portal.Users).Path(), false)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := reloaded.ByID("demo-id"); u.TOTPSecret != secret {
		t.Fatal("the users file on disk does not have the new secret")
	}
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code), http.StatusBadRequest, b.page)
	if !strings.Contains(ev.names(), "factor_enrolled:ChallengeOMATOTP") {
		t.Fatalf("events %s", ev.names())
	}

	// The new secret signs in; the old one no longer does.
	f.clk.Advance(f.portal.TOTP.Period)
	d := f.browser(t)
	d.signIn("demo", "/")
	d.get("/auth/otp?factor=totp")
	old, _ := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	if old2, _ := f.portal.TOTP.Code(secret, f.clk.Now()); old2 != old {
		wantStatus(t, d.post("/auth/otp", "factor", "totp", "code", old, "redirect", "/"), http.StatusUnauthorized, d.page)
	}
	now, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, d.post("/auth/otp", "factor", "totp", "code", now, "redirect", "/"), http.StatusSeeOther, d.page)

	// Past the step-up window, confirming and removing need the password.
	f.clk.Advance(StepUpWindow)
	cer, secret = b.newTOTP()
	code, _ = f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code), http.StatusForbidden, b.page)
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code, "password", "wrong-password"), http.StatusForbidden, b.page)
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code, "password", demoPassword), http.StatusSeeOther, b.page)
	if got := f.fileTOTP(t, "demo-id"); got != secret {
		t.Fatalf("secret %q, want %q", got, secret)
	}
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp/remove"), http.StatusForbidden, b.page)
	if f.fileTOTP(t, "demo-id") == "" {
		t.Fatal("removed without step-up")
	}
	b.get("/auth/account")
	resp = b.post("/auth/account/totp/remove", "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/account?done=totp-removed")
	u, _ := state.UsersFileOf(f.portal.Users).ByID("demo-id")
	if u.TOTPSecret != "" || u.HasFactor(state.FactorTOTP) {
		t.Fatalf("still enrolled: %+v", u)
	}
	if !strings.Contains(ev.names(), "factor_removed:ChallengeOMATOTP") {
		t.Fatalf("events %s", ev.names())
	}
	b.get("/auth/account")
	if !strings.Contains(b.page, "You have no authenticator app set up.") || strings.Contains(b.page, "/account/totp/remove") {
		t.Fatalf("account page:\n%s", b.page)
	}
	// Enrol afresh (no previous secret), a time step later (the replay
	// guard refuses a second code of the step the last one was used in).
	f.clk.Advance(f.portal.TOTP.Period)
	cer, secret = b.newTOTP()
	code, _ = f.portal.TOTP.Code(secret, f.clk.Now())
	resp = b.post("/auth/account/totp", "ceremony", cer, "code", code, "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/account?done=totp-enrolled")
	// No secret reaches the log.
	for _, e := range f.logs.All() {
		if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(line, secret) {
			t.Fatalf("a secret is in the log: %s", line)
		}
	}
}

// TestAccountTOTPRemoveLastFactor: a user whose only second factor is
// TOTP cannot remove it.
func TestAccountTOTPRemoveLastFactor(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signIn("totponly", "/")
	b.get("/auth/otp")
	code, _ := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	wantStatus(t, b.post("/auth/otp", "factor", "totp", "code", code, "redirect", "/"), http.StatusSeeOther, b.page)
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp/remove"), http.StatusConflict, b.page)
	if f.fileTOTP(t, "totp-id") != demoSecret {
		t.Fatal("the only factor was removed")
	}
	// With recovery codes it may go.
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
	wantStatus(t, b.post("/auth/account/totp/remove"), http.StatusSeeOther, b.page)
	if f.fileTOTP(t, "totp-id") != "" {
		t.Fatal("not removed")
	}
}

// TestAccountTOTPNeedsCSRF: the enrolment forms need the page's token.
func TestAccountTOTPNeedsCSRF(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signedIn()
	cer, secret := b.newTOTP()
	code, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, b.post("/auth/account/totp", "csrf", "-", "ceremony", cer, "code", code), http.StatusForbidden, b.page)
	wantStatus(t, b.post("/auth/account/totp", "csrf", "forged", "ceremony", cer, "code", code), http.StatusForbidden, b.page)
	wantStatus(t, b.post("/auth/account/totp/remove", "csrf", "-"), http.StatusForbidden, b.page)
	wantStatus(t, b.post("/auth/account/totp/new", "csrf", "-"), http.StatusForbidden, b.page)
	if f.fileTOTP(t, "demo-id") != demoSecret {
		t.Fatal("a request without the token changed the secret")
	}
	// Not signed in: to the sign-in page.
	c := f.browser(t)
	c.get("/auth/login")
	wantLocation(t, c.post("/auth/account/totp/new"), "/auth/login?redirect=%2Fauth%2Faccount")
}

// TestAccountTOTPProviderUser: a provider's user (second factor
// if_registered) enrols our TOTP on the account page; it is kept in their
// per-user state and asked for at their next sign-in.
func TestAccountTOTPProviderUser(t *testing.T) {
	f := newOIDCFixture(t, nil)
	b := f.browser(t)
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, "/app"), nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/app")
	b.get("/auth/account")
	if !strings.Contains(b.page, "Signed in as <strong>alice</strong>") || !strings.Contains(b.page, "You have no authenticator app set up.") {
		t.Fatalf("account page:\n%s", b.page)
	}
	cer, secret := b.newTOTP()
	code, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	resp = b.post("/auth/account/totp", "ceremony", cer, "code", code)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	wantLocation(t, resp, "/auth/account?done=totp-enrolled")
	us, err := f.store.GetUser(t.Context(), "corp:alice-sub-1")
	if err != nil || us.TOTPSecret != secret {
		t.Fatalf("stored secret %q (%v), want %q", us.TOTPSecret, err, secret)
	}
	if _, ok := state.UsersFileOf(f.portal.Users).ByID("corp:alice-sub-1"); ok {
		t.Fatal("the provider's user landed in the users file")
	}

	// The next sign-in asks for it.
	f.clk.Advance(f.portal.TOTP.Period)
	c := f.browser(t)
	resp = c.abs(http.MethodGet, f.atProvider(c, alice, "/app"), nil)
	wantStatus(t, resp, http.StatusSeeOther, c.page)
	wantLocation(t, resp, "/auth/otp?redirect=%2Fapp")
	c.get("/auth/otp")
	code, _ = f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, c.post("/auth/otp", "factor", "totp", "code", code, "redirect", "/app"), http.StatusSeeOther, c.page)
	if s := f.session(t, c); strings.Join(s.Factors, ",") != "OIDC:corp,ChallengeOMATOTP" {
		t.Fatalf("factors %v", s.Factors)
	}

	// if_registered: removing it is allowed (the provider's sign-in stands
	// alone again).
	c.get("/auth/account")
	wantStatus(t, c.post("/auth/account/totp/remove"), http.StatusSeeOther, c.page)
	if us, _ := f.store.GetUser(t.Context(), "corp:alice-sub-1"); us.TOTPSecret != "" {
		t.Fatal("the stored secret is still there")
	}
}

// TestAccountTOTPParallelWrongCodes: 40 wrong confirmation codes at once
// check at most max_failures codes; the rest, and then the right code,
// are refused with 429, and the secret is unchanged.
func TestAccountTOTPParallelWrongCodes(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.signedIn()
	cer, secret := b.newTOTP()
	token := b.csrf()
	wrong := wrongCode(t, f.portal, secret, f.clk.Now())
	codes, _ := parallel(t, 40, func(int) (int, string, error) {
		return b.postForm("/auth/account/totp", url.Values{"csrf": {token}, "ceremony": {cer}, "code": {wrong}})
	})
	if checked := testkit.CountChecked(t, codes); checked > DefaultFailureMax {
		t.Fatalf("%d codes checked, want at most %d", checked, DefaultFailureMax)
	}
	right, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, b.post("/auth/account/totp", "csrf", token, "ceremony", cer, "code", right), http.StatusTooManyRequests, b.page)
	if f.fileTOTP(t, "demo-id") != demoSecret {
		t.Fatal("the secret changed")
	}
}
