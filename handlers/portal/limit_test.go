package portal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

// postForm submits a form from a goroutine: it reports the status and the
// body rather than failing the test.
func (b *browser) postForm(path string, v url.Values) (int, string, error) {
	r, err := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		return 0, "", err
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "text/html")
	r.Header.Set("X-Test-IP", b.ip)
	resp, err := b.c.Do(r)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// parallel runs n copies of fn at once and returns the statuses and bodies.
func parallel(t *testing.T, n int, fn func(i int) (int, string, error)) ([]int, []string) {
	t.Helper()
	codes, bodies := make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			c, b, err := fn(i)
			if err != nil {
				errs <- err
			}
			codes[i], bodies[i] = c, b
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return codes, bodies
}

// TestPortalLoginParallelWrongPasswords: 60 wrong passwords for one login
// from one address, all at once, check at most max_failures passwords; the
// rest are refused with 429 before any check.
func TestPortalLoginParallelWrongPasswords(t *testing.T) {
	f := newPortalFixture(t, "")
	// A real cost, so that the checks overlap as they do in production.
	h, err := bcrypt.GenerateFromPassword([]byte(demoPassword), 8)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users.json")
	err = os.WriteFile(p, []byte(`{"users":[{"id":"demo-id","login":"demo","mail":"demo@example.com",
	 "password_hash":"`+string(h)+`","factors":["ChallengeEmail"]}]}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f.portal.Users = users.Directory("UserIdentityStore1")
	b := f.browser(t)
	b.get("/auth/login")
	token := b.csrf()
	codes, _ := parallel(t, 60, func(int) (int, string, error) {
		return b.postForm("/auth/login", url.Values{"csrf": {token}, "login": {"demo"}, "password": {"wrong"}})
	})
	checked := testkit.CountChecked(t, codes)
	t.Logf("60 parallel wrong passwords: %d checked, %d refused", checked, len(codes)-checked)
	if checked > DefaultFailureMax {
		t.Fatalf("%d passwords checked, want at most %d", checked, DefaultFailureMax)
	}
	// The right password is refused too until the window passes.
	resp := b.post("/auth/login", "login", "demo", "password", demoPassword, "csrf", token)
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
}

// TestPortalVerifyParallelWrongCodes: wrong codes sent at once over four
// sessions of one user are counted for the user's factor: at most
// max_attempts - 1 are answered "wrong" (the max_attempts-th blocks), and
// the factor is blocked for every session after, the right code included.
func TestPortalVerifyParallelWrongCodes(t *testing.T) {
	f := newPortalFixture(t, "")
	var bs []*browser
	var tokens []string
	// Five sessions at the second factor; the fifth sends nothing until
	// the others are done. (Signing it in after the burst would race the
	// sign-in limiter, which the wrong codes also feed, and could be
	// refused at the password instead of at the factor.)
	for i := range 5 {
		b := f.browser(t)
		b.ip = "198.51.100." + string(rune('1'+i))
		b.signIn("totponly", "")
		b.get("/auth/otp")
		bs, tokens = append(bs, b), append(tokens, b.csrf())
	}
	codes, bodies := parallel(t, 40, func(i int) (int, string, error) {
		b := bs[i%4]
		return b.postForm("/auth/otp", url.Values{"csrf": {tokens[i%4]}, "factor": {"totp"}, "code": {"000000"}})
	})
	wrong := 0
	for i, body := range bodies {
		switch {
		case codes[i] == http.StatusUnauthorized && strings.Contains(body, "That code is not right"):
			wrong++
		case codes[i] == http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d:\n%s", codes[i], body)
		}
	}
	t.Logf("40 parallel wrong codes over 4 sessions: %d answered wrong, the rest refused", wrong)
	if max := state.DefaultOTPMaxAttempts - 1; wrong > max {
		t.Fatalf("%d wrong codes answered, want at most %d", wrong, max)
	}
	// The fifth session's right code is refused too: the factor is
	// blocked for the user, not for the sessions that sent wrong codes.
	b := bs[4]
	c, err := f.portal.TOTP.Code(demoSecret, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp := b.post("/auth/otp", "factor", "totp", "code", c, "csrf", tokens[4])
	wantStatus(t, resp, http.StatusTooManyRequests, b.page)
}

// TestFailureLimiterReserve: reservations count at once, a release gives
// one back, and a refused reservation counts nothing.
func TestFailureLimiterReserve(t *testing.T) {
	l := &FailureLimiter{Max: 2, Window: time.Minute}
	ctx := context.Background()
	now := time.Unix(1000, 0)
	r1, _, blocked := l.Reserve(ctx, now, "a", "b")
	if blocked {
		t.Fatal("blocked at 0")
	}
	if _, _, blocked := l.Reserve(ctx, now, "a"); blocked {
		t.Fatal("blocked at 1")
	}
	if _, until, blocked := l.Reserve(ctx, now, "b", "a"); !blocked || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("third reservation: blocked %v until %v", blocked, until)
	}
	l.Release(ctx, r1)
	if _, _, blocked := l.Reserve(ctx, now, "a"); blocked {
		t.Fatal("a release did not give the attempt back")
	}
	// "b" holds none: the refused reservation above counted nothing on it.
	for i := range 2 {
		if _, _, blocked := l.Reserve(ctx, now, "b"); blocked {
			t.Fatalf("b blocked at %d", i)
		}
	}
}

// TestPortalLoginSprayFromOneIPv6Block: wrong passwords for 60 different
// logins, at once, each from another address of one IPv6 /64 (which one
// client can take each attempt from), are counted against one address:
// at most max_failures are checked. Each address used to count alone.
func TestPortalLoginSprayFromOneIPv6Block(t *testing.T) {
	f := newPortalFixture(t, "")
	b := f.browser(t)
	b.get("/auth/login")
	token := b.csrf()
	codes, _ := parallel(t, 60, func(i int) (int, string, error) {
		c := *b
		c.ip = fmt.Sprintf("2001:db8:7:7:%x::%x", i, i+1)
		return c.postForm("/auth/login", url.Values{"csrf": {token}, "login": {fmt.Sprintf("nobody-%d", i)}, "password": {"wrong"}})
	})
	if checked := testkit.CountChecked(t, codes); checked > DefaultFailureMax {
		t.Fatalf("%d passwords checked from one /64, want at most %d", checked, DefaultFailureMax)
	}
	// Another /64 is another client.
	c := *b
	c.ip = "2001:db8:7:8::1"
	if code, _, err := c.postForm("/auth/login", url.Values{"csrf": {token}, "login": {"nobody-x"}, "password": {"wrong"}}); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("another /64: %d, %v", code, err)
	}
}
