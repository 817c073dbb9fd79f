package portal

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// TestPortalRegisteredFactorBlockReported: a passkey or a recovery code
// blocked by wrong answers is reported as a code is: the session that
// reaches the limit emits challenge_blocked (once), a later session whose
// answer is refused because the user's factor is blocked emits
// login_failed with reason blocked and challenge_blocked, even for the
// right answer; both answer 429 with Retry-After.
func TestPortalRegisteredFactorBlockReported(t *testing.T) {
	for _, factor := range []string{"totp", "recovery", "passkey"} {
		t.Run(factor, func(t *testing.T) {
			f := newPortalFixture(t, "")
			var log recordedEvents
			f.portal.Env.Events = &log
			var right, wrong func(c *browser) *http.Response
			switch factor {
			case "totp":
				answer := func(c *browser, code string) *http.Response {
					c.get("/auth/otp?factor=totp")
					return c.post("/auth/otp", "factor", "totp", "code", code, "redirect", "/")
				}
				right = func(c *browser) *http.Response {
					code, _ := f.portal.TOTP.Code(demoSecret, f.clk.Now())
					return answer(c, code)
				}
				wrong = func(c *browser) *http.Response { return answer(c, "000000") }
			case "recovery":
				b := f.browser(t)
				b.signedIn()
				b.get("/auth/account")
				wantStatus(t, b.post("/auth/account/recovery"), http.StatusOK, b.page)
				codes := codeRE.FindAllStringSubmatch(b.page, -1)
				answer := func(c *browser, code string) *http.Response {
					c.get("/auth/otp?factor=recovery")
					return c.post("/auth/otp", "factor", "recovery", "code", code, "redirect", "/")
				}
				right = func(c *browser) *http.Response { return answer(c, codes[0][1]) }
				wrong = func(c *browser) *http.Response { return answer(c, "aaaa-bbbb-cccc-dddd") }
			case "passkey":
				a := withPasskeys(t, f)
				b := f.browser(t)
				b.signedIn()
				wantStatus(t, b.addPasskey(a, "laptop"), http.StatusSeeOther, b.page)
				right = func(c *browser) *http.Response {
					return c.usePasskey(func(o []byte) []byte { out, _ := a.Assert(o); return out })
				}
				wrong = func(c *browser) *http.Response {
					return c.usePasskey(func(o []byte) []byte {
						bad := a.Clone()
						bad.Origin = "http://localhost:1"
						out, _ := bad.Assert(o)
						return out
					})
				}
			}
			blockedAnswer := func(name string, resp *http.Response, c *browser) {
				t.Helper()
				if resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("%s: %d\n%s", name, resp.StatusCode, c.page)
				}
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
					t.Errorf("%s: Retry-After %q", name, resp.Header.Get("Retry-After"))
				}
			}
			blockedEvents := func(name string, key state.Key) []handlers.Event {
				t.Helper()
				var blocked, failed []handlers.Event
				evs := log.take()
				for _, ev := range evs {
					switch ev.Name {
					case handlers.EventChallengeBlocked:
						blocked = append(blocked, ev)
					case handlers.EventLoginFailed:
						failed = append(failed, ev)
					}
				}
				if len(blocked) != 1 || blocked[0].Session != key || blocked[0].Family != "portal" ||
					blocked[0].Reason != state.ReasonTooManyAttempts {
					t.Errorf("%s: challenge_blocked events %+v; all: %v", name, blocked, eventNames(evs))
				}
				return failed
			}
			log.take()

			// Session A reaches the limit.
			c := f.browser(t)
			pre := c.signIn("demo", "/")
			var resp *http.Response
			for range f.portal.OTP.MaxAttempts {
				if resp = wrong(c); resp.StatusCode != http.StatusUnauthorized {
					break
				}
			}
			blockedAnswer("last wrong answer", resp, c)
			blockedEvents("session A", state.KeyOf(pre))
			blockedAnswer("the blocked session's factor page", c.get("/auth/otp"), c)

			// Session B: the user's factor is blocked.
			d := f.browser(t)
			pre = d.signIn("demo", "/")
			log.take()
			blockedAnswer("right answer while the factor is blocked", right(d), d)
			failed := blockedEvents("session B", state.KeyOf(pre))
			if len(failed) != 1 || failed[0].Reason != "blocked" {
				var got []string
				for _, ev := range failed {
					got = append(got, ev.Reason)
				}
				t.Errorf("session B: login_failed reasons %s, want blocked", strings.Join(got, ","))
			}
			if s, err := f.store.Get(t.Context(), state.KeyOf(pre)); err != nil || s.EffectiveStatus(f.clk.Now()) != state.StatusChallengeBlocked {
				t.Errorf("session B: %+v %v", s, err)
			}
		})
	}
}
