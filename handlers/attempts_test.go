package handlers

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// TestAuthnAttemptsPerUserAcrossPosts: wrong TOTP answers count for the
// user's factor, so a new POST (a new correlationId and session) does not
// start a new count; once the factor is blocked a new challenge is refused
// at its Init (1009), and stays refused until an administrator resets the
// counters.
func TestAuthnAttemptsPerUserAcrossPosts(t *testing.T) {
	f := newAuthnFixture(t)
	round := func() (string, string, int, authnAnswer) {
		t.Helper()
		a := f.start("alice")
		code, ans := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorTOTP))
		return a.CorrelationID, ans.Nonce, code, ans
	}
	refusedInit := func(what string, code int, ans authnAnswer) {
		t.Helper()
		if code != 400 || ans.Status.Code != authnCodeBlocked || ans.Status.Status != string(state.StatusChallengeBlocked) ||
			ans.Status.Message != state.ReasonTooManyAttempts {
			t.Fatalf("%s: Init %d %+v", what, code, ans.Status)
		}
	}
	wrongAnswers, blocked := 0, false
	for r := 0; r < 3 && !blocked; r++ {
		cid, nonce, code, ans := round()
		if code != 200 {
			refusedInit(fmt.Sprintf("round %d", r), code, ans)
			break
		}
		for range 5 {
			code, ans := f.put(validateReq(cid, nonce, wrongOf(f.totpCode())))
			if code != 200 {
				if ans.Status.Status != string(state.StatusChallengeBlocked) {
					t.Fatalf("round %d: %d %+v", r, code, ans.Status)
				}
				blocked = true
				break
			}
			wrongAnswers++
			nonce = ans.Nonce
		}
	}
	if !blocked || wrongAnswers >= f.a.OTP.MaxAttempts {
		t.Fatalf("%d wrong answers checked (blocked: %v), want fewer than %d and a block", wrongAnswers, blocked, f.a.OTP.MaxAttempts)
	}
	// A new POST cannot even start the blocked factor, with the right
	// code at hand.
	_, _, code, ans := round()
	refusedInit("a new POST on the blocked factor", code, ans)

	// The reset: Basic auth, the family's error shape, then a new
	// challenge passes.
	reset := func(path string, auth bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("DELETE", path, nil)
		if auth {
			req.SetBasicAuth(apiUser, apiPass)
		}
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, req)
		return w
	}
	if w := reset("/authn/v1/users/alice/counters", false); w.Code != 401 || readAuthn(t, w).Status.Code != authnCodeBadClient {
		t.Fatalf("reset without credentials: %d %s", w.Code, w.Body)
	}
	if w := reset("/authn/v1/users/alice/counters?factor=Nope", true); w.Code != 400 || readAuthn(t, w).Status.Code != authnCodeUnknownFac {
		t.Fatalf("reset of an unknown factor: %d %s", w.Code, w.Body)
	}
	if w := reset("/oaa/runtime/authn/v1/users/alice/counters?factor="+state.FactorTOTP, true); w.Code != 200 || readAuthn(t, w).Status.Code != "0" {
		t.Fatalf("reset: %d %s", w.Code, w.Body)
	}
	cid, nonce, code, ans := round()
	if code != 200 {
		t.Fatalf("Init after the reset: %d %+v", code, ans.Status)
	}
	code, ans = f.put(validateReq(cid, nonce, f.totpCode()))
	if code != 200 || ans.Status.Status != string(state.StatusAuthenticated) {
		t.Fatalf("right code after the reset: %d %+v", code, ans.Status)
	}
}

// TestOTPAttemptsParallelAcrossInstances: 20 wrong TOTP answers for one
// user, sent at once over 4 sessions and two instances sharing one Redis,
// check at most max_attempts answers; the right code is refused after.
func TestOTPAttemptsParallelAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(`{"users":[{"id":"alice-id","login":"alice","mail":"alice@example.com",
		"totp_secret":"`+totpSecret+`","factors":["ChallengeEmail","ChallengeOMATOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	totpPolicy := state.TOTPPolicy{}.Defaults()
	var stores []*redisstore.Store
	var muxes []*http.ServeMux
	for range 2 {
		st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		api := &OTPSessions{
			Env: &Env{
				Store: st, Now: time.Now, Logger: zaptest.NewLogger(t),
				Policy: Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, StoreTimeout: 10 * time.Second},
			},
			Auth:  NewBearerAuth([][32]byte{sha256.Sum256([]byte(otpToken))}),
			Users: users.Directory("UserIdentityStore1"), OTP: state.OTPPolicy{}.Defaults(), TOTP: totpPolicy,
			Key: []byte("otp-hmac-key-for-tests-000000000"), ExposeOTP: true, CookieName: "authsession",
		}
		mux := http.NewServeMux()
		api.Register(mux)
		stores, muxes = append(stores, st), append(muxes, mux)
	}
	do := func(i int, method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+otpToken)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		muxes[i%2].ServeHTTP(w, r)
		return w
	}
	var ids []string
	for i := range 5 {
		id := state.NewID()
		if w := do(i, "PUT", "/sessions/"+id, `{"userId":"alice-id","passedLoginOTP":false}`); w.Code != 200 {
			t.Fatalf("PUT /sessions: %d %s", w.Code, w.Body)
		}
		ids = append(ids, id)
	}
	right, err := totpPolicy.Code(totpSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad := wrongOf(right)
	codes := make([]int, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			<-start
			w := do(i, "POST", "/user/otp/verify", `{"otp":"`+bad+`","types":["totp"],"sessionId":"`+ids[i%4]+`"}`)
			codes[i] = w.Code
		})
	}
	close(start)
	wg.Wait()
	wrongAnswers, blocked := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusNotFound:
			wrongAnswers++
		case http.StatusForbidden:
			blocked++
		default:
			t.Fatalf("status %d in %v", c, codes)
		}
	}
	t.Logf("20 parallel wrong answers over 4 sessions and 2 instances: %d answered wrong, %d blocked", wrongAnswers, blocked)
	if max := state.DefaultOTPMaxAttempts; wrongAnswers > max-1 {
		t.Fatalf("%d wrong answers checked, want at most %d", wrongAnswers, max-1)
	}
	us, err := stores[0].GetUser(context.Background(), "alice-id")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(us.Attempts[state.FactorTOTP].Times); n != state.DefaultOTPMaxAttempts {
		t.Fatalf("%d answers counted in the store, want %d", n, state.DefaultOTPMaxAttempts)
	}
	// A fifth session, on the other instance, with the right code: refused.
	if w := do(1, "POST", "/user/otp/verify", `{"otp":"`+right+`","types":["totp"],"sessionId":"`+ids[4]+`"}`); w.Code != http.StatusForbidden ||
		!strings.Contains(w.Body.String(), "challenge-blocked") {
		t.Fatalf("right code on a blocked factor: %d %s", w.Code, w.Body)
	}
}
