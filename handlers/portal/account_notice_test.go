package portal

import (
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/internal/smtptest"
	"github.com/authsession/caddy-authsession/state"
)

// mailText returns the decoded subject and body of a received mail.
func mailText(t *testing.T, m smtptest.Mail) (subject, body string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		t.Fatalf("not a mail: %v\n%s", err, m.Data)
	}
	r := msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header.Get("Subject"), string(b)
}

// TestAccountNoticesBySMTP: each change of the account's factors mails
// the user exactly one notice, through a real SMTP server, naming the
// change, the time and the client and no secret; a user without an
// address gets none.
func TestAccountNoticesBySMTP(t *testing.T) {
	f := newPortalFixture(t, "")
	srv := smtptest.Start(t, "", "")
	d, err := delivery.NewSMTPDeliverer(delivery.SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: delivery.SMTPTLSNone, From: "auth@example.com", Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.portal.Delivery = d
	f.portal.TrustFor = 24 * time.Hour
	a := withPasskeys(t, f)

	b := f.browser(t)
	b.signIn("demo", "/")
	wantStatus(t, b.totpCode(true), http.StatusSeeOther, b.page)
	if n := len(srv.Mails()); n != 0 {
		t.Fatalf("%d mails before any change", n)
	}
	var secrets []string
	seen := 0
	fresh := func() []smtptest.Mail { return srv.Mails()[seen:] }
	expect := func(change string) {
		t.Helper()
		mails := fresh()
		if len(mails) != 1 {
			t.Fatalf("%q: %d mails, want 1", change, len(mails))
		}
		m := mails[0]
		subject, body := mailText(t, m)
		if len(m.To) != 1 || m.To[0] != "demo@example.com" || !strings.HasPrefix(subject, "Security notice") {
			t.Fatalf("%q: mail %+v subject %q", change, m.To, subject)
		}
		if !strings.Contains(body, change+" at "+f.clk.Now().UTC().Format("2006-01-02 15:04 UTC")+" from 192.0.2.1.") ||
			!strings.Contains(body, "If this wasn't you") {
			t.Fatalf("%q: body\n%s", change, body)
		}
		for _, s := range append(secrets, demoSecret, demoPassword, b.cookie()) {
			if s != "" && (strings.Contains(m.Data, s) || strings.Contains(body, s)) {
				t.Fatalf("%q: the notice holds a secret %q:\n%s", change, s, body)
			}
		}
		if regexp.MustCompile(`\b\d{6}\b`).MatchString(body) {
			t.Fatalf("%q: the notice holds something like a code:\n%s", change, body)
		}
		seen++
	}

	wantStatus(t, b.addPasskey(a, "Laptop"), http.StatusSeeOther, b.page)
	expect(noticePasskeyAdded)

	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
	for _, c := range codeRE.FindAllStringSubmatch(b.page, -1) {
		secrets = append(secrets, c[1], strings.ReplaceAll(c[1], "-", ""))
	}
	expect(noticeRecoveryCodes)

	f.clk.Advance(f.portal.TOTP.Period)
	cer, secret := b.newTOTP()
	secrets = append(secrets, secret)
	code, _ := f.portal.TOTP.Code(secret, f.clk.Now())
	secrets = append(secrets, code)
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code), http.StatusSeeOther, b.page)
	expect(noticeTOTPReplaced)

	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/totp/remove"), http.StatusSeeOther, b.page)
	expect(noticeTOTPRemoved)

	f.clk.Advance(f.portal.TOTP.Period)
	cer, secret = b.newTOTP()
	secrets = append(secrets, secret)
	code, _ = f.portal.TOTP.Code(secret, f.clk.Now())
	wantStatus(t, b.post("/auth/account/totp", "ceremony", cer, "code", code), http.StatusSeeOther, b.page)
	expect(noticeTOTPEnrolled)

	b.get("/auth/account")
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(b.page)
	if id == nil {
		t.Fatalf("no passkey listed:\n%s", b.page)
	}
	wantStatus(t, b.post("/auth/account/passkey/remove", "id", id[1]), http.StatusSeeOther, b.page)
	expect(noticePasskeyRemoved)

	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/devices/forget", "index", "1"), http.StatusSeeOther, b.page)
	expect(noticeBrowserForgotten)
	// Nothing left to forget: no notice.
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/devices/forget", "all", "1"), http.StatusSeeOther, b.page)
	if n := len(fresh()); n != 0 {
		t.Fatalf("%d notices for forgetting nothing", n)
	}

	// A user without a mail address: the change is made, no mail.
	c := f.browser(t)
	c.signIn("totponly", "/")
	f.clk.Advance(f.portal.TOTP.Period)
	wantStatus(t, c.totpCode(false), http.StatusSeeOther, c.page)
	c.get("/auth/account")
	wantStatus(t, c.post("/auth/account/recovery"), http.StatusOK, c.page)
	if us, _ := f.store.GetUser(t.Context(), "totp-id"); len(us.Recovery) != state.RecoveryCodeCount {
		t.Fatal("no recovery codes made")
	}
	if n := len(fresh()); n != 0 {
		t.Fatalf("%d notices to a user without an address", n)
	}

	// A mail server that is down: the change stands, the failure is logged.
	_ = srv.Close()
	b.get("/auth/account")
	wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
	if len(codeRE.FindAllStringSubmatch(b.page, -1)) != state.RecoveryCodeCount {
		t.Fatal("no codes shown while the mail server is down")
	}
	if f.logs.FilterMessage("portal security notice not delivered").Len() != 1 {
		t.Fatal("the failed notice was not logged")
	}
}
