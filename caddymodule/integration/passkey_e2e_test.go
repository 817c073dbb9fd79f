package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/authsession/caddy-authsession/state"
)

// TestPortalE2EPasskey drives Chromium with a virtual authenticator (the
// DevTools WebAuthn domain: CTAP2, internal transport, resident keys, user
// verification) through make run's configuration plus a webauthn block:
// sign in with the TOTP code, add a passkey on the account page, sign out,
// sign in with the password and the passkey, then with the passkey alone
// (passwordless on), remove the passkey, and see it offered no more.
func TestPortalE2EPasskey(t *testing.T) {
	var usersCopy string
	d := startE2EDemoWith(t, "passkey", func(cfg, base string) string {
		block := fmt.Sprintf("\t\twebauthn {\n\t\t\trp_id localhost\n\t\t\trp_name \"caddy-authsession demo\"\n\t\t\torigins %s\n\t\t\tuser_verification required\n\t\t\tpasswordless on\n\t\t}\n\t\tauthn {", base)
		if !strings.Contains(cfg, "\t\tauthn {") {
			t.Fatal("Caddyfile.example no longer has an authn block to put the webauthn block before")
		}
		// The account page writes the users file: a copy of the example.
		old := regexp.MustCompile(`users_file (\S+)`).FindStringSubmatch(cfg)
		if old == nil {
			t.Fatal("the configuration has no users_file")
		}
		b, err := os.ReadFile(old[1])
		if err != nil {
			t.Fatal(err)
		}
		usersCopy = filepath.Join(t.TempDir(), "users.json")
		if err := os.WriteFile(usersCopy, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg = strings.ReplaceAll(cfg, old[0], "users_file "+usersCopy)
		return strings.Replace(cfg, "\t\tauthn {", block, 1)
	})
	if _, err := chromedp.Call(d.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	auth, err := chromedp.Call(d.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	// The authenticator answers at once when present; while absent, the
	// login page's conditional request (autofill) stays pending, as it
	// does until a user picks the passkey, so the password can be typed.
	present := func(on bool) {
		t.Helper()
		if _, err := chromedp.Call(d.ctx, webauthn.SetAutomaticPresenceSimulation,
			webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: auth.AuthenticatorID, Enabled: on}); err != nil {
			t.Fatalf("WebAuthn.setAutomaticPresenceSimulation: %v", err)
		}
	}

	// Sign in with the authenticator app's code.
	pre := d.signIn()
	d.submit("choosing the app", chromedp.Click(chromedp.CSS("#factor-totp")))
	code, err := state.TOTPPolicy{}.Defaults().Code("JBSWY3DPEHPK3PXP", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.submit("entering the code", chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#verify")))
	d.landed(pre)

	// Add a passkey on the account page (a factor was passed a moment
	// ago: no password asked).
	d.run("opening the account page", chromedp.Navigate(d.base+"/auth/account"))
	d.page("account", "/auth/account", "You have no passkey yet.")
	d.run("adding a passkey",
		chromedp.SendKeys(chromedp.CSS("#passkey-name"), "Test laptop"),
		chromedp.Click(chromedp.CSS("#add-passkey-button")))
	d.page("passkey-added", "/auth/account?done=passkey-added", "Test laptop")
	creds, err := chromedp.Call(d.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams(auth))
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential {
		t.Fatalf("the virtual authenticator holds %+v (%v), want one resident credential", creds, err)
	}
	// Recovery codes, shown once.
	d.submit("making recovery codes", chromedp.Click(chromedp.CSS("#make-recovery")))
	d.page("recovery-codes", "/auth/account/recovery", "Your new recovery codes")
	// Replace the authenticator app: a new secret as a QR code and as
	// text, confirmed with its code. The code of the next time step (within
	// the allowed skew): the current one may be the step just used to sign
	// in, which the replay guard refuses.
	d.run("opening the account page", chromedp.Navigate(d.base+"/auth/account"))
	d.submit("asking for a new authenticator app", chromedp.Click(chromedp.CSS("#new-totp")))
	d.page("totp-new", "/auth/account/totp/new", "Scan this code")
	secret := get(d, "reading the new key", chromedp.Text(chromedp.CSS("#totp-secret")))
	if secret == "" || secret == "JBSWY3DPEHPK3PXP" {
		t.Fatalf("new key %q", secret)
	}
	// The QR code is a data: image the page's CSP lets the browser draw.
	if !get(d, "checking the QR code", chromedp.Evaluate[bool](
		`(() => { const i = document.querySelector("#totp-qr"); return i.complete && i.naturalWidth === 256 && i.src.startsWith("data:image/png;base64,") })()`)) {
		t.Fatal("the QR code is not drawn")
	}
	newCode, err := state.TOTPPolicy{}.Defaults().Code(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	d.submit("confirming the new app", chromedp.SendKeys(chromedp.CSS("#totp-code"), newCode), chromedp.Click(chromedp.CSS("#confirm-totp-button")))
	d.page("totp-replaced", "/auth/account?done=totp-replaced", "Your authenticator app was replaced")
	if b, err := os.ReadFile(usersCopy); err != nil || !strings.Contains(string(b), secret) || strings.Contains(string(b), "JBSWY3DPEHPK3PXP") {
		t.Fatalf("the users file after the replacement (%v):\n%s", err, b)
	}
	// The screenshot of the docs: the account page with the passkey.
	d.run("opening the account page", chromedp.Navigate(d.base+"/auth/account"))
	d.page("account-with-passkey", "/auth/account", "Test laptop")
	// docs/img/account.png is this shot, 800 pixels wide.
	d.run("narrowing the window", chromedp.EmulateViewport(800, 600))
	png := get(d, "screenshot of the account page", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(d.shots, "account.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	d.run("restoring the window", chromedp.EmulateReset())
	present(false)
	d.signOut()

	// Password, then the passkey.
	d.submit("signing in",
		chromedp.SendKeys(chromedp.CSS("#login"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-password"),
		chromedp.Click(chromedp.CSS("#signin")))
	d.page("factor-choice-passkey", "/auth/otp?redirect=%2F", "Use a passkey")
	pre = d.sessionCookie()
	d.submit("choosing the passkey", chromedp.Click(chromedp.CSS("#factor-passkey")))
	d.page("passkey-factor", "/auth/otp?factor=passkey&redirect=%2F", "Use the passkey of this device")
	present(true)
	d.run("using the passkey", chromedp.Click(chromedp.CSS("#verify")))
	d.landed(pre)

	// Passwordless: the passkey alone (a discoverable credential).
	present(false)
	d.signOut()
	pre = d.sessionCookie()
	present(true)
	d.run("signing in with the passkey alone", chromedp.Click(chromedp.CSS("#signin-passkey")))
	d.landed(pre)
	creds, err = chromedp.Call(d.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams(auth))
	if err != nil || len(creds.Credentials) != 1 || creds.Credentials[0].SignCount < 1 {
		t.Errorf("after the assertion the authenticator holds %+v (%v)", creds, err)
	}

	// Remove it (the passkey was just used: no password asked).
	d.run("opening the account page", chromedp.Navigate(d.base+"/auth/account"))
	d.page("account-before-removal", "/auth/account", "Test laptop")
	d.submit("removing the passkey", chromedp.Click(chromedp.CSS(".remove-passkey")))
	d.page("passkey-removed", "/auth/account?done=passkey-removed", "You have no passkey yet.")
	present(false)
	d.signOut()
	d.submit("signing in",
		chromedp.SendKeys(chromedp.CSS("#login"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-password"),
		chromedp.Click(chromedp.CSS("#signin")))
	d.page("factor-choice-without-passkey", "/auth/otp?redirect=%2F", "Use a recovery code")
	body := get(d, "reading the page", chromedp.Text(chromedp.CSS("body")))
	if strings.Contains(body, "Use a passkey") {
		t.Error("a removed passkey is still offered")
	}
	// The removed passkey is refused when forced.
	d.run("forcing the passkey", chromedp.Navigate(d.base+"/auth/otp?factor=passkey&redirect=%2F"))
	d.page("passkey-not-offered", "/auth/otp?factor=passkey&redirect=%2F", "Choose how to confirm your sign-in")
	// And the removed passkey alone signs nobody in.
	d.run("opening the sign-in page", chromedp.Navigate(d.base+"/auth/login?redirect=%2F"), chromedp.WaitVisible(chromedp.CSS("#signin-passkey")))
	present(true)
	d.run("signing in with the removed passkey", chromedp.Click(chromedp.CSS("#signin-passkey")))
	d.page("removed-passkey-refused", "/auth/login/passkey", "That passkey could not sign you in.")
}
