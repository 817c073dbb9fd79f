package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/smtptest"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

const (
	otpToken   = "test-token-0123456789"
	seedID     = "ddac0bf6-e618-499e-b6ee-2c45530ea8ed"
	seedUserID = "738e379f-fe30-45ab-819c-ba88804b6368"
	totpSecret = "JBSWY3DPEHPK3PXP"
)

// codeRE finds the code in a mail of the default template.
var codeRE = regexp.MustCompile(`one-time code is ([0-9]+)`)

type otpFixture struct {
	h     http.Handler
	clk   *fakeClock
	store *state.Memory
	smtp  *smtptest.Server
	logs  *observer.ObservedLogs
	async *delivery.Async
	api   *OTPSessions
}

func (f *otpFixture) clock() time.Time        { return f.clk.Now() }
func (f *otpFixture) advance(d time.Duration) { f.clk.Advance(d) }

// newOTPFixture serves the OTP family with a users file holding "alice"
// (mail, TOTP) and mail going to a loopback SMTP server (smtpUp) or to a
// closed port.
func newOTPFixture(t testing.TB, smtpUp bool) *otpFixture {
	t.Helper()
	f := &otpFixture{clk: testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.store = state.NewMemory(state.MemoryOptions{Now: f.clock})
	t.Cleanup(func() { f.store.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	logger := zap.New(core)

	p := filepath.Join(t.TempDir(), "users.json")
	os.WriteFile(p, []byte(`{"users":[{"id":"alice-id","login":"alice","mail":"alice@example.com",
		"totp_secret":"`+totpSecret+`","factors":["ChallengeEmail","ChallengeOMATOTP"]}]}`), 0o600)
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	host, port := "127.0.0.1", testkit.FreePort()
	if smtpUp {
		f.smtp = smtptest.Start(t, "", "")
		port = f.smtp.Port
	}
	sd, err := delivery.NewSMTPDeliverer(delivery.SMTPConfig{Host: host, Port: port, TLS: delivery.SMTPTLSNone, From: "auth@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.async = delivery.NewAsync(delivery.Router{Email: sd}, delivery.AsyncOptions{Attempts: 2, Backoff: time.Millisecond, Wait: 20 * time.Second}, logger)
	t.Cleanup(func() { f.async.Close() })
	api := &OTPSessions{
		Env: &Env{
			Store: f.store, Now: f.clock, Logger: logger,
			Policy: Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute},
		},
		Auth:       NewBearerAuth([][32]byte{sha256.Sum256([]byte(otpToken))}),
		Users:      users.Directory("UserIdentityStore1"),
		OTP:        state.OTPPolicy{}.Defaults(),
		TOTP:       state.TOTPPolicy{}.Defaults(),
		Key:        []byte("otp-hmac-key-for-tests-000000000"),
		Delivery:   f.async,
		ExposeOTP:  true,
		CookieName: "authsession",
	}
	mux := http.NewServeMux()
	api.Register(mux)
	f.h = contract.New(t).Handler(mux) // checked against docs/openapi/otp.yaml
	f.api = api
	return f
}

func (f *otpFixture) do(t *testing.T, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+otpToken)
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
		} else {
			r.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *otpFixture) status(t *testing.T, id string) state.Status {
	t.Helper()
	s, err := f.store.Get(context.Background(), state.KeyOf(id))
	if err != nil {
		t.Fatal(err)
	}
	return s.EffectiveStatus(f.clock())
}

// jsonAPI checks an error answer and returns its first error.
func jsonAPI(t *testing.T, w *httptest.ResponseRecorder, status int, code string) jsonAPIError {
	t.Helper()
	if w.Code != status || w.Header().Get("Content-Type") != JSONAPIContentType {
		t.Fatalf("answer %d %q %s, want %d JSON:API", w.Code, w.Header().Get("Content-Type"), w.Body, status)
	}
	var doc jsonAPIDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || len(doc.Errors) != 1 {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	e := doc.Errors[0]
	if e.Code != code || e.Status != strconv.Itoa(status) || e.ID == "" || e.Title == "" {
		t.Fatalf("error %+v, want code %q", e, code)
	}
	return e
}

func answerOf(t *testing.T, w *httptest.ResponseRecorder, status int) otpAnswer {
	t.Helper()
	if w.Code != status {
		t.Fatalf("answer %d %s, want %d", w.Code, w.Body, status)
	}
	var a otpAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOTPSeedRequest(t *testing.T) {
	f := newOTPFixture(t, true)
	seed := `{"userId":"` + seedUserID + `","passedLoginOTP":true}`
	a := answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, seed), http.StatusOK)
	if len(a.OTP) != 6 || a.ExpiresAt != "2026-03-01T12:05:00Z" {
		t.Fatalf("first answer %+v", a)
	}
	if f.status(t, seedID) != state.StatusPendingVerification {
		t.Fatal("new session not pending verification")
	}
	if w := f.do(t, "PUT", "/sessions/"+seedID, seed); w.Code != http.StatusNoContent {
		t.Fatalf("second answer %d %s", w.Code, w.Body)
	}
	if f.status(t, seedID) != state.StatusAuthenticated {
		t.Fatal("passedLoginOTP:true did not authenticate")
	}
	// The user is in no users file: nothing was mailed, a line says so.
	if len(f.smtp.Mails()) != 0 || f.logs.FilterMessageSnippet("delivery skipped").Len() != 1 {
		t.Fatal("delivery not skipped for an unknown user")
	}
	// passedLoginOTP:false with no live code: a new code, back to pending.
	f.advance(31 * time.Second)
	a = answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"`+seedUserID+`","passedLoginOTP":"false"}`), http.StatusOK)
	if a.OTP == "" || f.status(t, seedID) != state.StatusPendingVerification {
		t.Fatalf("relogin %+v", a)
	}
	// ... and again while that code lives: no change.
	if w := f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"`+seedUserID+`","passedLoginOTP":false}`); w.Code != http.StatusNoContent {
		t.Fatalf("%d", w.Code)
	}
	// Another user's id: 404, the session is not revealed.
	jsonAPI(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"someone-else","passedLoginOTP":true}`), 404, "session-not-found")
	if f.status(t, seedID) != state.StatusPendingVerification {
		t.Fatal("mismatched user changed the session")
	}
}

func TestOTPMailVerifyFlow(t *testing.T) {
	f := newOTPFixture(t, true)
	a := answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := f.smtp.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := codeRE.FindStringSubmatch(m.Data)
	if got == nil || got[1] != a.OTP || m.To[0] != "alice@example.com" {
		t.Fatalf("mail to %v:\n%s", m.To, m.Data)
	}
	e := jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+wrong(got[1])+`","types":["login"],"sessionId":"`+seedID+`"}`), 404, "invalid-otp")
	if e.Source == nil || e.Source.Pointer != "/otp" {
		t.Fatalf("pointer %+v", e.Source)
	}
	if w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+got[1]+`","types":["login"]}`,
		"Cookie", "authsession="+seedID); w.Code != 204 {
		t.Fatalf("verify %d %s", w.Code, w.Body)
	}
	if f.status(t, seedID) != state.StatusAuthenticated {
		t.Fatal("not authenticated")
	}
	jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+got[1]+`","sessionId":"`+seedID+`"}`), 404, "invalid-otp")
}

func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestOTPExpiredBlockAndCooldown(t *testing.T) {
	f := newOTPFixture(t, true)
	a := answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"u1","passedLoginOTP":false}`), 200)
	verify := func(code string) *httptest.ResponseRecorder {
		return f.do(t, "POST", "/user/otp/verify", `{"otp":"`+code+`","types":["login"],"sessionId":"`+seedID+`"}`)
	}
	// Cool-down: a new code within 30s is refused.
	w := f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`)
	jsonAPI(t, w, 429, "too-many-requests")
	if w.Header().Get("Retry-After") != "30" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	f.advance(5 * time.Minute)
	e := jsonAPI(t, verify(a.OTP), 404, "invalid-otp")
	if !strings.Contains(e.Detail, "expired") {
		t.Fatalf("detail %q", e.Detail)
	}
	a = answerOf(t, f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`), 201)
	for range 4 {
		jsonAPI(t, verify(wrong(a.OTP)), 404, "invalid-otp")
	}
	w = verify(wrong(a.OTP))
	jsonAPI(t, w, 403, "challenge-blocked")
	if f.status(t, seedID) != state.StatusChallengeBlocked || w.Header().Get("Retry-After") != "900" {
		t.Fatalf("status %q retry %q", f.status(t, seedID), w.Header().Get("Retry-After"))
	}
	jsonAPI(t, verify(a.OTP), 403, "challenge-blocked")
	f.advance(15 * time.Minute)
	a = answerOf(t, f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`), 201)
	if w := verify(a.OTP); w.Code != 204 {
		t.Fatalf("after the block: %d %s", w.Code, w.Body)
	}
}

func TestOTPTOTPVerify(t *testing.T) {
	f := newOTPFixture(t, true)
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(totpSecret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// One step of skew: the previous step's code works.
	c := code(f.clock().Add(-30 * time.Second))
	if w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+c+`","types":["totp"],"sessionId":"`+seedID+`"}`); w.Code != 204 {
		t.Fatalf("totp %d %s", w.Code, w.Body)
	}
	if f.status(t, seedID) != state.StatusAuthenticated {
		t.Fatal("not authenticated")
	}
	// Replay of the same code: refused.
	jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+c+`","types":["totp"],"sessionId":"`+seedID+`"}`), 404, "invalid-otp")
	// Two steps off: refused.
	jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+code(f.clock().Add(90*time.Second))+`","types":["totp"],"sessionId":"`+seedID+`"}`), 404, "invalid-otp")
}

func TestOTPSMTPDown(t *testing.T) {
	f := newOTPFixture(t, false)
	jsonAPI(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 502, "channel_comm_error")
	f.advance(time.Minute)
	jsonAPI(t, f.do(t, "POST", "/user/otp/sendmail", `{"sessionId":"`+seedID+`"}`), 502, "channel_comm_error")
}

func TestOTPSendmail(t *testing.T) {
	f := newOTPFixture(t, true)
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.smtp.Next(ctx); err != nil {
		t.Fatal(err)
	}
	f.advance(31 * time.Second)
	if w := f.do(t, "POST", "/user/otp/sendmail", `{"sessionId":"`+seedID+`"}`); w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("sendmail %d %s", w.Code, w.Body)
	}
	m, err := f.smtp.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := codeRE.FindStringSubmatch(m.Data)
	if got == nil {
		t.Fatal("no code")
	}
	// The old code was replaced by the mailed one.
	if w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+got[1]+`","sessionId":"`+seedID+`"}`); w.Code != 204 {
		t.Fatalf("verify mailed code %d %s", w.Code, w.Body)
	}
	// A user with no address: 422.
	other := "0b1e7a9c-1f2d-4e3a-9b8c-7d6e5f4a3b2c"
	answerOf(t, f.do(t, "PUT", "/sessions/"+other, `{"userId":"nomail","passedLoginOTP":false}`), 200)
	jsonAPI(t, f.do(t, "POST", "/user/otp/sendmail", `{"sessionId":"`+other+`"}`), 422, "no-destination")
}

func TestOTPRequestErrors(t *testing.T) {
	f := newOTPFixture(t, true)
	good := `{"userId":"u","passedLoginOTP":true}`
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, pointer            string
	}{
		{"no token", "PUT", "/sessions/" + seedID, good, []string{"Authorization", ""}, 401, "unauthorized", ""},
		{"wrong token", "PUT", "/sessions/" + seedID, good, []string{"Authorization", "Bearer nope"}, 401, "unauthorized", ""},
		{"basic instead of bearer", "POST", "/user/otp/verify", `{}`, []string{"Authorization", "Basic YTpi"}, 401, "unauthorized", ""},
		{"malformed id", "PUT", "/sessions/short", good, nil, 404, "session-not-found", ""},
		{"not json", "PUT", "/sessions/" + seedID, `{"userId":`, nil, 400, "bad-request", ""},
		{"missing userId", "PUT", "/sessions/" + seedID, `{"passedLoginOTP":true}`, nil, 400, "bad-request", "/userId"},
		{"missing passedLoginOTP", "PUT", "/sessions/" + seedID, `{"userId":"u"}`, nil, 400, "bad-request", "/passedLoginOTP"},
		{"bad passedLoginOTP", "PUT", "/sessions/" + seedID, `{"userId":"u","passedLoginOTP":"yes"}`, nil, 400, "bad-request", "/passedLoginOTP"},
		{"xml body", "PUT", "/sessions/" + seedID, good, []string{"Content-Type", "application/xml"}, 415, "unsupported-media", ""},
		{"xml accept", "POST", "/user/otp/verify", `{}`, []string{"Accept", "application/xml"}, 406, "not-acceptable", ""},
		{"too large", "PUT", "/sessions/" + seedID, `{"userId":"` + strings.Repeat("a", MaxBody) + `"}`, nil, 413, "body-too-large", ""},
		{"wrong method", "GET", "/sessions/" + seedID, "", nil, 405, "method-not-allowed", ""},
		{"unknown session", "POST", "/user/otp/verify", `{"otp":"123456","sessionId":"` + seedID + `"}`, nil, 404, "session-not-found", ""},
		{"no session named", "POST", "/user/otp/verify", `{"otp":"123456"}`, nil, 400, "bad-request", "/sessionId"},
		{"missing otp", "POST", "/user/otp/verify", `{"sessionId":"` + seedID + `"}`, nil, 400, "bad-request", "/otp"},
		{"unknown type", "POST", "/user/otp/verify", `{"otp":"1","types":["pigeon"],"sessionId":"` + seedID + `"}`, nil, 422, "unsupported-type", "/types/0"},
		{"unsupported type", "POST", "/user/otp/verify", `{"otp":"1","types":["login","account"],"sessionId":"` + seedID + `"}`, nil, 422, "unsupported-type", "/types/1"},
		{"types not array", "POST", "/user/otp/verify", `{"otp":"1","types":"login"}`, nil, 400, "bad-request", "/types"},
		{"otp for unknown session", "POST", "/user/otp", `{"sessionId":"` + seedID + `"}`, nil, 404, "session-not-found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := jsonAPI(t, f.do(t, tt.method, tt.path, tt.body, tt.hdr...), tt.status, tt.code)
			if tt.pointer != "" && (e.Source == nil || e.Source.Pointer != tt.pointer) {
				t.Fatalf("source %+v, want pointer %s", e.Source, tt.pointer)
			}
		})
	}
	if w := f.do(t, "PUT", "/sessions/"+seedID, good, "Authorization", ""); w.Header().Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	if _, err := f.store.Get(context.Background(), state.KeyOf(seedID)); err == nil {
		t.Fatal("a refused request created the session")
	}
}

// TestOTPNoSecretInLogs runs a full flow and searches every log line, at
// every level, for the codes, the token and the TOTP secret.
func TestOTPNoSecretInLogs(t *testing.T) {
	f := newOTPFixture(t, true)
	a := answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	f.do(t, "POST", "/user/otp/verify", `{"otp":"`+wrong(a.OTP)+`","sessionId":"`+seedID+`"}`)
	f.do(t, "POST", "/user/otp/verify", `{"otp":"`+a.OTP+`","sessionId":"`+seedID+`"}`)
	f.advance(time.Minute)
	b := answerOf(t, f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`), 201)
	f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":true}`, "Authorization", "Bearer wrong-"+otpToken)
	secrets := []string{a.OTP, wrong(a.OTP), b.OTP, otpToken, totpSecret, seedID}
	if f.logs.Len() == 0 {
		t.Fatal("no logs captured")
	}
	for _, e := range f.logs.All() {
		line, _ := json.Marshal(map[string]any{"msg": e.Message, "fields": e.ContextMap()})
		for _, s := range secrets {
			if strings.Contains(string(line), s) {
				t.Fatalf("log line contains a secret: %s", line)
			}
		}
	}
}

func TestOTPHourlySendLimit(t *testing.T) {
	f := newOTPFixture(t, true)
	for range 10 {
		answerOf(t, f.do(t, "PUT", "/sessions/"+state.NewID(), `{"userId":"busy","passedLoginOTP":false}`), 200)
	}
	id := state.NewID()
	w := f.do(t, "PUT", "/sessions/"+id, `{"userId":"busy","passedLoginOTP":false}`)
	jsonAPI(t, w, 429, "too-many-requests")
	if w.Header().Get("Retry-After") != "3600" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if _, err := f.store.Get(context.Background(), state.KeyOf(id)); err == nil {
		t.Fatal("a refused request created the session")
	}
	f.advance(time.Hour)
	answerOf(t, f.do(t, "PUT", "/sessions/"+id, `{"userId":"busy","passedLoginOTP":false}`), 200)
}

// TestOTPSendOnBlockedFactorSendsNothing: once wrong login codes on one
// session have blocked the user's login-code factor, no session of the
// user gets a new code sent (a new session, a new code on another one, or
// sendmail): 403 challenge-blocked with Retry-After, nothing created or
// mailed. The block's end lets codes go again.
func TestOTPSendOnBlockedFactorSendsNothing(t *testing.T) {
	f := newOTPFixture(t, true)
	other := state.NewID()
	answerOf(t, f.do(t, "PUT", "/sessions/"+other, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	a := answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	for range state.DefaultOTPMaxAttempts - 1 {
		jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+wrong(a.OTP)+`","types":["login"],"sessionId":"`+seedID+`"}`), 404, "invalid-otp")
	}
	jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+wrong(a.OTP)+`","types":["login"],"sessionId":"`+seedID+`"}`), 403, "challenge-blocked")
	mailed := func() int {
		t.Helper()
		return len(f.smtp.Mails()) // Deliver returns once the server took the mail
	}
	sent := mailed()

	f.advance(6 * time.Minute) // past the cool-down and the codes' lifetime
	fresh := state.NewID()
	w := f.do(t, "PUT", "/sessions/"+fresh, `{"userId":"alice-id","passedLoginOTP":false}`)
	jsonAPI(t, w, 403, "challenge-blocked")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if _, err := f.store.Get(context.Background(), state.KeyOf(fresh)); err == nil {
		t.Fatal("a refused request created the session")
	}
	jsonAPI(t, f.do(t, "POST", "/user/otp/sendmail", `{"sessionId":"`+other+`"}`), 403, "challenge-blocked")
	jsonAPI(t, f.do(t, "PUT", "/sessions/"+other, `{"userId":"alice-id","passedLoginOTP":false}`), 403, "challenge-blocked")
	if n := mailed(); n != sent {
		t.Fatalf("codes were mailed for a blocked factor: %d mails, want %d", n, sent)
	}

	f.advance(state.DefaultOTPBlockFor)
	answerOf(t, f.do(t, "PUT", "/sessions/"+fresh, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
}

// TestOTPCreateCountsTowardsSendLimit: a code handed to the caller by
// POST /user/otp counts towards sends_per_hour, as the documentation says
// and as a mailed one does; it used to be handed out without limit, one
// every cool-down.
func TestOTPCreateCountsTowardsSendLimit(t *testing.T) {
	f := newOTPFixture(t, true)
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"busy","passedLoginOTP":false}`), 200) // the 1st send
	for i := 2; i <= state.DefaultOTPSendsPerHour; i++ {
		f.advance(31 * time.Second) // past the session's cool-down
		answerOf(t, f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`), 201)
	}
	f.advance(31 * time.Second)
	w := f.do(t, "POST", "/user/otp", `{"sessionId":"`+seedID+`"}`)
	jsonAPI(t, w, 429, "too-many-requests")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// TestOTPWrongBearerTokensThrottled: wrong bearer tokens are counted per
// client address before they are checked, as wrong Basic credentials are:
// of 60 sent at once from one address at most BasicMaxFailures are
// checked (401), the rest answer 429 with Retry-After, and then the right
// token from that address is refused too. Another address is not held up.
// Tokens were checked without any limit, so a short one could be guessed.
func TestOTPWrongBearerTokensThrottled(t *testing.T) {
	f := newOTPFixture(t, true)
	from := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/user/otp", strings.NewReader(`{"sessionId":"`+seedID+`"}`))
		r.RemoteAddr = addr
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		return w
	}
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"u3","passedLoginOTP":false}`), 200)
	codes := make([]int, 60)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = from("198.51.100.9:1234", fmt.Sprintf("guess-%d", i)).Code })
	}
	wg.Wait()
	if checked := testkit.CountChecked(t, codes); checked > BasicMaxFailures {
		t.Fatalf("%d wrong tokens checked from one address, want at most %d", checked, BasicMaxFailures)
	}
	w := from("198.51.100.9:1235", otpToken)
	jsonAPI(t, w, http.StatusTooManyRequests, "too-many-requests")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	f.advance(31 * time.Second)
	if w := from("192.0.2.1:1234", otpToken); w.Code != http.StatusCreated {
		t.Fatalf("the right token from another address: %d %s", w.Code, w.Body)
	}
}
