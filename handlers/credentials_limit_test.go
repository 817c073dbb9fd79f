package handlers

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// bcryptCounter counts the bcrypt comparisons, and the most running at
// once, while the test runs. Tests using it do not run in parallel.
type bcryptCounter struct {
	calls, running, peak atomic.Int64
	costs                sync.Map // cost → true
}

func countBcrypt(t *testing.T) *bcryptCounter {
	c := &bcryptCounter{}
	bcryptHook = func(hash []byte) {
		c.calls.Add(1)
		n := c.running.Add(1)
		for {
			p := c.peak.Load()
			if n <= p || c.peak.CompareAndSwap(p, n) {
				break
			}
		}
		if cost, err := bcrypt.Cost(hash); err == nil {
			c.costs.Store(cost, true)
		}
		time.Sleep(time.Millisecond) // hold the slot, so that overlaps show
		c.running.Add(-1)
	}
	t.Cleanup(func() { bcryptHook = nil })
	return c
}

func newLimitedAuth(t *testing.T) *BasicAuth {
	hash, err := bcrypt.GenerateFromPassword([]byte(apiPass), 5)
	if err != nil {
		t.Fatal(err)
	}
	return NewBasicAuth(map[string][]byte{apiUser: hash})
}

// TestBasicAuthThrottlesWrongPasswords: 100 wrong admin passwords at once
// from one address check at most BasicMaxFailures with bcrypt; the rest
// are refused with 429, Retry-After and the family's error shape, and the
// good pair already verified still passes.
func TestBasicAuthThrottlesWrongPasswords(t *testing.T) {
	f := newAuthnFixture(t)
	f.a.Auth = newLimitedAuth(t)
	if code, _ := f.put(map[string]any{"challengeop": "Init"}); code == http.StatusUnauthorized {
		t.Fatal("the right credentials were refused")
	}
	c := countBcrypt(t)
	codes := make([]int, 100)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Go(func() {
			<-start
			req := httptest.NewRequest("POST", authnPathV1, nil)
			req.RemoteAddr = "198.51.100.50:999" // not the administrator's address
			req.SetBasicAuth(apiUser, "wrong-"+strconv.Itoa(i))
			w := httptest.NewRecorder()
			f.mux.ServeHTTP(w, req)
			codes[i] = w.Code
			if w.Code == http.StatusTooManyRequests {
				if a := readAuthn(t, w); a.Status.Code != authnCodeRetry || w.Header().Get("Retry-After") == "" {
					t.Errorf("429 answer %+v, Retry-After %q", a.Status, w.Header().Get("Retry-After"))
				}
			}
		})
	}
	close(start)
	wg.Wait()
	n401, n429 := 0, 0
	for _, code := range codes {
		switch code {
		case http.StatusUnauthorized:
			n401++
		case http.StatusTooManyRequests:
			n429++
		default:
			t.Fatalf("status %d", code)
		}
	}
	t.Logf("100 parallel wrong passwords: %d × 401, %d × 429, %d bcrypt runs, at most %d at once", n401, n429, c.calls.Load(), c.peak.Load())
	if got := c.calls.Load(); got > BasicMaxFailures {
		t.Fatalf("%d bcrypt runs, want at most %d", got, BasicMaxFailures)
	}
	if n429 < 100-BasicMaxFailures {
		t.Fatalf("%d answers 429, want at least %d", n429, 100-BasicMaxFailures)
	}
	if peak := c.peak.Load(); peak > int64(cap(bcryptSlots)) {
		t.Fatalf("%d bcrypt runs at once, want at most %d", peak, cap(bcryptSlots))
	}
	// The pair verified from the administrator's address is remembered
	// for it: the administrator is not locked out.
	if code, _ := f.put(map[string]any{"challengeop": "Init"}); code == http.StatusUnauthorized || code == http.StatusTooManyRequests {
		t.Fatalf("the right credentials got %d during the throttle", code)
	}
	// From the guessing address the right pair is refused unchecked: a
	// remembered pair must not tell a right guess (a pass) from a wrong
	// one (429) there.
	req := httptest.NewRequest("POST", authnPathV1, nil)
	req.RemoteAddr = "198.51.100.50:1000"
	req.SetBasicAuth(apiUser, apiPass)
	if _, res, _ := f.a.Auth.Authenticate(req); res != AuthThrottled {
		t.Fatalf("the right pair from the guessing address: %v, want throttled", res)
	}
	// The OAM family answers 429 in its own shape.
	o := &OAM{Env: f.a.Env, Auth: f.a.Auth}
	req = httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(apiUser, "wrong")
	w := httptest.NewRecorder()
	o.guard(func(http.ResponseWriter, *http.Request) {}).ServeHTTP(w, req)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"message"`) {
		t.Fatalf("OAM: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

// TestBasicAuthRepeatedFailingPairCostsNoBcrypt: a failing pair sent again
// is answered from the remembered keyed hash, without bcrypt.
func TestBasicAuthRepeatedFailingPairCostsNoBcrypt(t *testing.T) {
	b := newLimitedAuth(t)
	b.Limiter = &MemoryLimiter{Max: 1000, Window: time.Minute}
	c := countBcrypt(t)
	for i := range 5 {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(apiUser, "wrong")
		if _, res, _ := b.Authenticate(r); res != AuthBad {
			t.Fatalf("attempt %d: %v", i, res)
		}
	}
	if got := c.calls.Load(); got != 1 {
		t.Fatalf("%d bcrypt runs for one failing pair sent 5 times, want 1", got)
	}
	for d := range b.failed {
		if string(d[:]) == apiUser+"\x00wrong" {
			t.Fatal("the failing pair is kept in the clear")
		}
	}
}

// TestBasicAuthUnknownUserSameCost: an unknown username and an unknown
// clientId run a bcrypt of the configured cost, as a known one does.
func TestBasicAuthUnknownUserSameCost(t *testing.T) {
	b := newLimitedAuth(t)
	c := countBcrypt(t)
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("nobody", "x")
	b.Authenticate(r)
	hash, err := bcrypt.GenerateFromPassword([]byte("client-secret"), 6)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := NewAuthnClients(map[string]string{"app": string(hash)})
	if err != nil {
		t.Fatal(err)
	}
	clients.Check("unknown-app", "client-secret")
	clients.Check("app", "wrong")
	var costs []int
	c.costs.Range(func(k, _ any) bool { costs = append(costs, k.(int)); return true })
	if c.calls.Load() != 3 || len(costs) != 2 {
		t.Fatalf("%d bcrypt runs of costs %v, want 3 of costs 5 and 6", c.calls.Load(), costs)
	}
	for _, want := range []int{5, 6} {
		if _, ok := c.costs.Load(want); !ok {
			t.Fatalf("no bcrypt of cost %d (costs %v)", want, costs)
		}
	}
}

// TestBasicAuthThrottleAnswersAsDocumented: once a username is throttled,
// the risk analyzer's operations and the challenge counter reset answer 429
// with Retry-After as docs/openapi says (the risk analyzer with no body, as
// for 401; the reset in the challenge family's shape, code 1012). Every
// exchange goes through the contract checker.
func TestBasicAuthThrottleAnswersAsDocumented(t *testing.T) {
	throttled := func(t *testing.T) *BasicAuth {
		b := newLimitedAuth(t)
		b.Limiter = &MemoryLimiter{Max: 1, Window: time.Minute}
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(apiUser, "wrong")
		b.Authenticate(r)
		if _, res, _ := b.Authenticate(r); res != AuthThrottled {
			t.Fatalf("second wrong password: %v, want throttled", res)
		}
		return b
	}
	send := func(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.SetBasicAuth(apiUser, "wrong")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	ra := newRA(t)
	ra.ra.Auth = throttled(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", RiskBase, `{"user":{"loginName":"alice"}}`},
		{"PUT", RiskBase + "/updatesessionsecurely", `{"requestId":"` + raSeedID + `","authenticationStatus":0,"clientType":0}`},
		{"PUT", RiskBase + "/fetchsessionsecurely", `{"requestId":"` + raSeedID + `"}`},
		{"GET", RiskBase + "/" + raSeedID, ""},
	} {
		w := send(ra.mux, c.method, c.path, c.body)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || w.Body.Len() != 0 {
			t.Errorf("risk analyzer %s %s: %d, Retry-After %q, body %q", c.method, c.path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	f := newAuthnFixture(t)
	f.a.Auth = throttled(t)
	w := send(f.mux, "DELETE", "/authn/v1/users/alice/counters", "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || readAuthn(t, w).Status.Code != authnCodeRetry {
		t.Fatalf("counter reset: %d, Retry-After %q, %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

// TestMemoryLimiterFullFailsClosed: with the table full of a flood's keys,
// an attempt on a key the limiter cannot count is refused for the window;
// it used to pass uncounted, every time, so fresh usernames or addresses
// could switch the API credentials' limit off.
func TestMemoryLimiterFullFailsClosed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := &MemoryLimiter{Max: 2, Window: time.Minute, MaxKeys: 100}
	for i := range 100 {
		if _, _, blocked := l.Reserve(ctx, now, "basic-ip:flood-"+strconv.Itoa(i)); blocked {
			t.Fatalf("flood key %d refused before the table was full", i)
		}
	}
	passed := 0
	for range 10 {
		if _, _, blocked := l.Reserve(ctx, now, "basic-user:admin", "basic-ip:flood-3"); !blocked {
			passed++
		}
	}
	if passed != 0 {
		t.Fatalf("%d attempts on an untracked key passed a full limiter", passed)
	}
	if _, until, blocked := l.Reserve(ctx, now, "basic-user:admin"); !blocked || !until.After(now) {
		t.Fatalf("refusal until %v, %v", until, blocked)
	}
	if _, _, blocked := l.Reserve(ctx, now, "basic-ip:flood-7"); blocked {
		t.Fatal("a tracked key under its limit is refused")
	}
	// Once the flood leaves the window, the key is counted up to its limit.
	later := now.Add(time.Minute + time.Second)
	for i := range 3 {
		release, _, blocked := l.Reserve(ctx, later, "basic-user:admin")
		if blocked != (i == 2) {
			t.Fatalf("attempt %d after the flood: blocked %v", i+1, blocked)
		}
		if i == 0 {
			release() // a success gives its attempt back
			if _, _, blocked := l.Reserve(ctx, later, "basic-user:admin"); blocked {
				t.Fatal("refused after a release")
			}
		}
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                  "192.0.2.1",
		"::ffff:192.0.2.1":           "192.0.2.1",
		"2001:db8:1:2:aaaa::1":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::99": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":            "2001:db8:1:3::/64",
		"fe80::1%eth0":               "fe80::/64",
		"not an address":             "not an address",
		"":                           "",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBasicAuthCachedPairNoBypass: the cache of verified pairs is per
// client address. It was per pair, so once the real client had signed in,
// anyone guessing the password from elsewhere hit the cache with the right
// guess: no bcrypt (a guess cost a SHA-256) and no limit (the cache was
// read before the count). Now a guess from another address is counted and
// checked like any: with the user blocked it is refused, while the real
// client's own cached pair still passes.
func TestBasicAuthCachedPairNoBypass(t *testing.T) {
	b := newLimitedAuth(t)
	from := func(addr, pass string) AuthResult {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		r.SetBasicAuth(apiUser, pass)
		_, res, _ := b.Authenticate(r)
		return res
	}
	if res := from("192.0.2.1:4000", apiPass); res != AuthOK {
		t.Fatalf("the real client: %v", res)
	}
	for i := range BasicMaxFailures {
		if res := from("198.51.100.9:5000", fmt.Sprintf("guess-%d", i)); res != AuthBad {
			t.Fatalf("wrong guess %d: %v", i, res)
		}
	}
	// The user is blocked: the right password from a fresh address is
	// refused unchecked.
	if res := from("203.0.113.5:6000", apiPass); res != AuthThrottled {
		t.Fatalf("the right password from elsewhere while the user is blocked: %v, want throttled", res)
	}
	if res := from("198.51.100.9:5001", apiPass); res != AuthThrottled {
		t.Fatalf("the right password from the guessing address: %v, want throttled", res)
	}
	// The real client's pair, verified from its address, still passes.
	if res := from("192.0.2.1:4001", apiPass); res != AuthOK {
		t.Fatalf("the real client during the attack: %v", res)
	}
}

// TestCachedCredentialsNoOracleFromGuessingAddress: a pair or token
// verified from an address is refused there too once wrong guesses from
// that address are refused, so that a guess from the real client's own
// address is not told right (a pass) from wrong (429) without limit.
func TestCachedCredentialsNoOracleFromGuessingAddress(t *testing.T) {
	basic := newLimitedAuth(t)
	bearer := NewBearerAuth([][32]byte{sha256.Sum256([]byte("right-token"))})
	basicFrom := func(pass string) AuthResult {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:4000"
		r.SetBasicAuth(apiUser, pass)
		_, res, _ := basic.Authenticate(r)
		return res
	}
	bearerFrom := func(token string) AuthResult {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "[2001:db8:5:5::1]:4000"
		r.Header.Set("Authorization", "Bearer "+token)
		res, _ := bearer.Authenticate(r)
		return res
	}
	for name, try := range map[string]func(string) AuthResult{"basic": basicFrom, "bearer": bearerFrom} {
		right := apiPass
		if name == "bearer" {
			right = "right-token"
		}
		if res := try(right); res != AuthOK {
			t.Fatalf("%s: the real client: %v", name, res)
		}
		for i := range BasicMaxFailures {
			if res := try(fmt.Sprintf("guess-%d", i)); res != AuthBad {
				t.Fatalf("%s: wrong guess %d: %v", name, i, res)
			}
		}
		if res := try("guess-x"); res != AuthThrottled {
			t.Fatalf("%s: a guess past the limit: %v", name, res)
		}
		if res := try(right); res != AuthThrottled {
			t.Fatalf("%s: the right, remembered credentials from the guessing address: %v, want throttled", name, res)
		}
	}
}
