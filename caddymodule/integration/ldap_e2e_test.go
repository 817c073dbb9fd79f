package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/internal/smtptest"
)

// TestPortalE2ELDAP drives Chromium through the demo configuration with an
// LDAP directory added and mail sent to a loopback SMTP server: alice,
// known only to the directory, signs in with her directory password and
// the code mailed to her directory address, and lands on the protected
// app.
func TestPortalE2ELDAP(t *testing.T) {
	browserPath(t)
	srv := ldaptest.Start(t, "")
	mail := smtptest.Start(t, "mailer", "smtp-pass-77")
	t.Setenv("AUTHSESSION_E2E_LDAP_PASSWORD", ldaptest.ServicePass)
	d := startE2EDemo(t, "ldap", func(cfg string) string {
		dir := fmt.Sprintf(`
		directory corp ldap {
			url %s
			bind_dn %s
			bind_password {env.AUTHSESSION_E2E_LDAP_PASSWORD}
			base_dn %s
			user_filter (&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))
			tls {
				ca_file %s
			}
			timeout 3s
		}
		otp {
			smtp {
				host 127.0.0.1
				port %d
				tls none
				username mailer
				password smtp-pass-77
				from login@example.com
			}`, srv.URL(), ldaptest.ServiceDN, ldaptest.PeopleDN, srv.CAFile(), mail.Port)
		for _, old := range []string{"\t\totp {", "\t\t\tlog_delivery\n"} {
			if !strings.Contains(cfg, old) {
				t.Fatalf("the demo configuration no longer has %q", old)
			}
		}
		cfg = strings.Replace(cfg, "\t\totp {", dir, 1)
		return strings.Replace(cfg, "\t\t\tlog_delivery\n", "", 1)
	})
	d.run("opening the app", chromedp.Navigate(d.base+"/"))
	d.page("login", "/auth/login?redirect=%2F", "caddy-authsession demo")
	d.submit("signing in",
		chromedp.SendKeys(chromedp.CSS("#login"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), ldaptest.AlicePassword),
		chromedp.Click(chromedp.CSS("#signin")))
	// Her only usable factor is email: the code is sent at once.
	d.page("email-code", "/auth/otp?factor=email&redirect=%2F", "We sent a one-time code to a***@example.com")
	pre := d.sessionCookie()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := mail.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code := mailCodeRE.FindStringSubmatch(m.Data)
	if code == nil || len(m.To) != 1 || m.To[0] != "alice@example.com" {
		t.Fatalf("mail %+v", m)
	}
	d.submit("entering the code", chromedp.SendKeys(chromedp.CSS("#code"), code[1]), chromedp.Click(chromedp.CSS("#verify")))
	d.page("protected-app", "/", "Hello alice, this is the protected demo app.")
	if post := d.sessionCookie(); post == "" || post == pre {
		t.Fatalf("the session id was not rotated at sign-in (before %q, after %q)", pre, post)
	}
}
