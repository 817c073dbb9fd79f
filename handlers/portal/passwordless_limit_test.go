package portal

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// startResult is the answer to one passwordless start.
type startResult struct {
	code       int
	retryAfter string
	answer     ceremonyAnswer
}

// startPasswordless starts a passwordless sign-in for each of ips (one
// request each, from its own browser: cookies and CSRF token), in workers
// parallel goroutines.
func startPasswordless(t *testing.T, f *portalFixture, ips []string, workers int) []startResult {
	t.Helper()
	// The tokens first (a page view each), so that the starts themselves
	// run at once.
	type ready struct {
		b    *browser
		csrf string
	}
	rs := make([]ready, len(ips))
	for i, ip := range ips {
		b := f.browser(t)
		b.ip = ip
		b.get("/auth/login")
		rs[i] = ready{b, b.csrf()}
	}
	out := make([]startResult, len(ips))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				v := url.Values{"csrf": {rs[i].csrf}}
				r, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/auth/login/passkey/options", strings.NewReader(v.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("X-Test-IP", ips[i])
				resp, err := rs[i].b.c.Do(r)
				if err != nil {
					t.Error(err)
					continue
				}
				var a ceremonyAnswer
				err = json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				if err != nil {
					t.Errorf("start %d: %d, not JSON: %v", i, resp.StatusCode, err)
				}
				out[i] = startResult{resp.StatusCode, resp.Header.Get("Retry-After"), a}
			}
		})
	}
	for i := range ips {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// passed checks the answers: 200 with a ceremony, or 429 with Retry-After
// and an error in the endpoint's JSON shape. It returns the ceremonies of
// the starts that passed, per address.
func passed(t *testing.T, ips []string, res []startResult) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, r := range res {
		switch r.code {
		case http.StatusOK:
			if r.answer.Ceremony == "" {
				t.Errorf("start without a ceremony: %+v", r.answer)
			}
			out[ips[i]] = append(out[ips[i]], r.answer.Ceremony)
		case http.StatusTooManyRequests:
			if ra, err := strconv.Atoi(r.retryAfter); err != nil || ra <= 0 || r.answer.Error == "" || r.answer.Ceremony != "" {
				t.Errorf("refused start: Retry-After %q, %+v", r.retryAfter, r.answer)
			}
		default:
			t.Errorf("start: %d %+v", r.code, r.answer)
		}
	}
	return out
}

func repeat(ip string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = ip
	}
	return out
}

func count(m map[string][]string) (n int) {
	for _, v := range m {
		n += len(v)
	}
	return n
}

// TestPasswordlessStartsLimited: anonymous passwordless starts, each of
// which stores a ceremony, are limited per client address and for all
// clients together, even when sent in parallel from several addresses;
// the refused ones answer 429 with Retry-After in the endpoint's JSON
// shape and store nothing; a start's session ends with its ceremony.
func TestPasswordlessStartsLimited(t *testing.T) {
	f := newPortalFixture(t, "")
	withPasskeys(t, f)
	f.portal.Passkeys.Config.Passwordless = true

	// One address, 200 starts at once: exactly the default limit passes.
	one := repeat("198.51.100.7", 200)
	ok := passed(t, one, startPasswordless(t, f, one, 8))
	if n := count(ok); n != DefaultPasswordlessPerIP {
		t.Fatalf("%d of %d parallel starts from one address passed, want %d", n, len(one), DefaultPasswordlessPerIP)
	}
	if got := f.store.Len(); got != DefaultPasswordlessPerIP {
		t.Errorf("%d sessions stored for %d starts", got, DefaultPasswordlessPerIP)
	}
	ceremony := ok["198.51.100.7"][0]
	if s, err := f.store.Get(t.Context(), state.KeyOf(ceremony)); err != nil || !s.ExpiryTime.Equal(f.clk.Now().Add(state.CeremonyTTL)) {
		t.Errorf("a start's session: %+v %v, want it to end with its ceremony", s, err)
	}

	// Eight addresses at once, each under its own limit: all together
	// pass only the budget.
	f.clk.Advance(time.Minute)
	const budget = 50
	f.portal.PasswordlessBudget = &FailureLimiter{Max: budget, Window: state.CeremonyTTL}
	var many []string
	for i := range 8 {
		many = append(many, repeat("203.0.113."+strconv.Itoa(i+1), 20)...)
	}
	ok = passed(t, many, startPasswordless(t, f, many, 8))
	if n := count(ok); n != budget {
		t.Fatalf("%d of %d parallel starts from 8 addresses passed, want the budget %d", n, len(many), budget)
	}
	for ip, cs := range ok {
		if len(cs) > 20 {
			t.Errorf("%s: %d starts passed", ip, len(cs))
		}
	}
	// A new address is refused while the budget is spent ...
	fresh := []string{"192.0.2.99"}
	if n := count(passed(t, fresh, startPasswordless(t, f, fresh, 1))); n != 0 {
		t.Errorf("a start passed with the budget spent")
	}
	// ... and passes once the ceremonies have ended, whose sessions are
	// gone with them.
	f.clk.Advance(state.CeremonyTTL)
	if n := count(passed(t, fresh, startPasswordless(t, f, fresh, 1))); n != 1 {
		t.Errorf("no start passed once the ceremonies ended")
	}
	if _, err := f.store.Get(t.Context(), state.KeyOf(ceremony)); err == nil {
		t.Errorf("a start's session outlived its ceremony")
	}
}
