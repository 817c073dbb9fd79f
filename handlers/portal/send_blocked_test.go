package portal

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// TestPortalSendOnBlockedFactorSendsNothing: once wrong codes on one
// session have blocked the user's email factor, no other session of the
// user gets a code mailed, neither from the password step nor from "send a
// new code", even with several asking at once; the block's end lets codes
// go again.
func TestPortalSendOnBlockedFactorSendsNothing(t *testing.T) {
	f := newPortalFixture(t, "")
	a := f.browser(t)
	a.signIn("mailonly", "")
	for i := range state.DefaultOTPMaxAttempts {
		a.get("/auth/otp?factor=email")
		resp := a.post("/auth/otp", "factor", "email", "code", "000000")
		if resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("wrong code %d passed", i+1)
		}
	}
	sent := f.mail.count()

	// A new sign-in from elsewhere: the password is right, the factor is
	// blocked, so no code leaves.
	b := f.browser(t)
	b.ip = "192.0.2.20"
	b.get("/auth/login")
	resp := b.post("/auth/login", "login", "mailonly", "password", demoPassword)
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(b.page, "Too many wrong codes") {
		t.Fatalf("refusal: Retry-After %q\n%s", resp.Header.Get("Retry-After"), b.page)
	}
	if f.mail.count() != sent {
		t.Fatalf("a code was mailed for a blocked factor (%d mails, want %d)", f.mail.count(), sent)
	}

	// Several sessions asking for a new code at once: none is sent.
	var wg sync.WaitGroup
	for i := range 6 {
		c := f.browser(t)
		c.ip = fmt.Sprintf("192.0.2.%d", 40+i)
		c.get("/auth/login")
		c.post("/auth/login", "login", "mailonly", "password", demoPassword)
		c.get("/auth/otp")
		csrf := c.csrf()
		wg.Go(func() {
			for range 3 {
				c.post("/auth/otp/send", "csrf", csrf)
			}
		})
	}
	wg.Wait()
	if f.mail.count() != sent {
		t.Fatalf("codes were mailed for a blocked factor (%d mails, want %d)", f.mail.count(), sent)
	}

	// After the block, codes go again.
	f.clk.Advance(state.DefaultOTPBlockFor + time.Second)
	d := f.browser(t)
	d.ip = "192.0.2.30"
	d.get("/auth/login")
	resp = d.post("/auth/login", "login", "mailonly", "password", demoPassword)
	wantStatus(t, resp, http.StatusSeeOther, d.page)
	if f.mail.count() != sent+1 {
		t.Fatalf("after the block: %d mails, want %d", f.mail.count(), sent+1)
	}
}
