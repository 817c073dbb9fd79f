package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/internal/smtptest"
	"github.com/authsession/caddy-authsession/state"
)

const (
	itClient       = "it-client"
	itClientSecret = "it-client-secret-31"
	itTOTPSecret   = "JBSWY3DPEHPK3PXP"
)

// authnIT is the challenge flow served by a real Caddy: mail through a
// loopback SMTP server, SMS through a local webhook receiver.
type authnIT struct {
	t      *testing.T
	tester *caddytest.Tester
	base   string
	smtp   *smtptest.Server

	log  string // Caddy's log file
	cfg  string // the Caddyfile, before expand
	port int

	mu   sync.Mutex
	hook []delivery.WebhookPayload
}

func startAuthnIT(t *testing.T) *authnIT {
	it := &authnIT{t: t, smtp: smtptest.Start(t, "mailer", "smtp-pass-77")}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p delivery.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			w.WriteHeader(400)
			return
		}
		it.mu.Lock()
		it.hook = append(it.hook, p)
		it.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(hook.Close)
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, []byte(`{"users":[
		{"id":"alice","login":"alice","mail":"alice@example.com","phone":"+15555551234","totp_secret":"`+itTOTPSecret+`",
		 "factors":["ChallengeEmail","ChallengeSMS","ChallengeOMATOTP","ChallengeFIDO2"]},
		{"id":"bob","login":"bob","factors":["ChallengeYOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	it.log = filepath.Join(t.TempDir(), "caddy.log")
	it.cfg = fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	log {
		output file %s
		format json
		level DEBUG
	}
	authsession {
		api_user %s %s
		users_file %s
		otp {
			max_attempts 3
			delivery_timeout 10s
			smtp {
				host 127.0.0.1
				port %d
				tls none
				username mailer
				password smtp-pass-77
				from login@example.com
			}
			webhook %s hook-secret
		}
		authn {
			client %s %s
		}
	}
}
http://localhost:{PORT} {
	authsession api
	authsession gate
	respond "protected content"
}
`, it.log, testAPIUser, testAPIHash, users, it.smtp.Port, hook.URL, itClient, sha256Hex(itClientSecret))
	tester, port := newTester(t, it.cfg)
	it.tester, it.port, it.base = tester, port, fmt.Sprintf("http://localhost:%d", port)
	return it
}

// call sends a JSON request with the demo Basic credentials.
func (it *authnIT) call(method, body string) (int, itAnswer) {
	it.t.Helper()
	req, _ := http.NewRequest(method, it.base+"/authn/v1", strings.NewReader(body))
	req.SetBasicAuth(testAPIUser, "admin-password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := it.tester.Client.Do(req)
	if err != nil {
		it.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a itAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		it.t.Fatalf("%s: %d not JSON: %s", method, resp.StatusCode, b)
	}
	return resp.StatusCode, a
}

type itAnswer struct {
	Status struct {
		Code, Message, Status string
	} `json:"status"`
	CorrelationID, Nonce, SessionID string
}

func (it *authnIT) start(user string) itAnswer {
	it.t.Helper()
	st, a := it.call("POST", `{"clientInfo":{"clientId":"`+itClient+`","clientSecret":"`+itClientSecret+
		`"},"userInfo":{"userId":"`+user+`","groups":["Default"]},"timeToLiveInSec":300}`)
	if st != 200 {
		it.t.Fatalf("POST: %d %+v", st, a)
	}
	return a
}

func (it *authnIT) put(fields map[string]any) (int, itAnswer) {
	it.t.Helper()
	b, _ := json.Marshal(fields)
	return it.call("PUT", string(b))
}

func (it *authnIT) initOp(a itAnswer, nonce, factor string) itAnswer {
	it.t.Helper()
	st, b := it.put(map[string]any{
		"challengeop": "Init", "correlationId": a.CorrelationID, "nonce": nonce,
		"challengedata": map[string]any{"factor": factor},
	})
	if st != 200 || b.Status.Status != "pending verification" {
		it.t.Fatalf("Init %s: %d %+v", factor, st, b)
	}
	return b
}

func (it *authnIT) validate(a itAnswer, nonce, answer string) (int, itAnswer) {
	it.t.Helper()
	return it.put(map[string]any{
		"challengeop": "Validate", "correlationId": a.CorrelationID, "nonce": nonce,
		"challengeAnswer": answer,
	})
}

// mailedCode waits for the next mail at the loopback SMTP server, checks
// its recipient and returns the code in it.
func (it *authnIT) mailedCode(to string) string {
	it.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mail, err := it.smtp.Next(ctx)
	if err != nil {
		it.t.Fatal(err)
	}
	m := mailCodeRE.FindStringSubmatch(mail.Data)
	if m == nil || len(mail.To) != 1 || mail.To[0] != to {
		it.t.Fatalf("mail %+v", mail)
	}
	return m[1]
}

// gate returns the gate's status for a session id.
func (it *authnIT) gate(sid string) int {
	it.t.Helper()
	return cookieStatus(it.t, it.base+"/app", "authsession", sid)
}

func (it *authnIT) lastHook() delivery.WebhookPayload {
	it.mu.Lock()
	defer it.mu.Unlock()
	if len(it.hook) == 0 {
		it.t.Fatal("the webhook received nothing")
	}
	return it.hook[len(it.hook)-1]
}

// TestAuthnFlowsThroughCaddy walks POST → Init → Validate → authenticated →
// gate for mail, webhook and TOTP, then the failure paths.
func TestAuthnFlowsThroughCaddy(t *testing.T) {
	it := startAuthnIT(t)
	var secrets []string // what must never reach the log
	pass := func(t *testing.T, a itAnswer, nonce, code string) {
		secrets = append(secrets, code, a.SessionID, a.CorrelationID, nonce)
		t.Helper()
		if it.gate(a.SessionID) != 401 {
			t.Fatal("the gate let a pending session through")
		}
		st, c := it.validate(a, nonce, code)
		if st != 200 || c.Status.Status != "authenticated" {
			t.Fatalf("Validate: %d %+v", st, c)
		}
		if g := it.gate(a.SessionID); g != 200 {
			t.Fatalf("gate after Validate: %d", g)
		}
	}
	t.Run("email", func(t *testing.T) {
		a := it.start("alice")
		b := it.initOp(a, a.Nonce, "ChallengeEmail")
		pass(t, a, b.Nonce, it.mailedCode("alice@example.com"))
	})
	t.Run("webhook", func(t *testing.T) {
		a := it.start("alice")
		b := it.initOp(a, a.Nonce, "ChallengeSMS")
		p := it.lastHook()
		if p.Channel != "sms" || p.To != "+15555551234" {
			t.Fatalf("webhook payload %+v", p)
		}
		pass(t, a, b.Nonce, p.OTP)
	})
	t.Run("totp", func(t *testing.T) {
		a := it.start("alice")
		b := it.initOp(a, a.Nonce, "ChallengeOMATOTP")
		code, err := state.TOTPPolicy{}.Defaults().Code(itTOTPSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pass(t, a, b.Nonce, code)
	})
	t.Run("wrong answers then blocked", func(t *testing.T) {
		a := it.start("alice")
		b := it.initOp(a, a.Nonce, "ChallengeSMS")
		code, n := it.lastHook().OTP, b.Nonce
		for range 2 {
			st, c := it.validate(a, n, wrongCode(code))
			if st != 200 || c.Status.Status != "pending verification" || c.Status.Message != "wrong_answer" {
				t.Fatalf("wrong answer: %d %+v", st, c)
			}
			n = c.Nonce
		}
		st, c := it.validate(a, n, wrongCode(code))
		if st != 400 || c.Status.Status != "challenge blocked" || c.Status.Message != "too_many_attempts" {
			t.Fatalf("third wrong answer: %d %+v", st, c)
		}
		if st, _ := it.validate(a, n, code); st != 400 || it.gate(a.SessionID) != 401 {
			t.Fatalf("right code while blocked: %d", st)
		}
		// The count is alice's, not the session's: a new challenge on the
		// factor is refused at its Init, with no code sent, until an
		// administrator resets the counters.
		it.mu.Lock()
		hooks := len(it.hook)
		it.mu.Unlock()
		a2 := it.start("alice")
		st, c = it.put(map[string]any{
			"challengeop": "Init", "correlationId": a2.CorrelationID, "nonce": a2.Nonce,
			"challengedata": map[string]any{"factor": "ChallengeSMS"},
		})
		if st != 400 || c.Status.Code != "1009" || c.Status.Status != "challenge blocked" {
			t.Fatalf("Init of a new challenge on a blocked factor: %d %+v", st, c)
		}
		it.mu.Lock()
		sent := len(it.hook) - hooks
		it.mu.Unlock()
		if sent != 0 {
			t.Fatalf("%d code(s) sent for a blocked factor", sent)
		}
		req, _ := http.NewRequest(http.MethodDelete, it.base+"/authn/v1/users/alice/counters?factor=ChallengeSMS", nil)
		req.SetBasicAuth(testAPIUser, "admin-password")
		resp, err := it.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"code":"0"`) {
			t.Fatalf("counter reset: %d %s", resp.StatusCode, body)
		}
		// Reset: the factor works again.
		b2 := it.initOp(a2, a2.Nonce, "ChallengeSMS")
		if st, c := it.validate(a2, b2.Nonce, it.lastHook().OTP); st != 200 || c.Status.Status != "authenticated" {
			t.Fatalf("right code after the reset: %d %+v", st, c)
		}
	})
	t.Run("nonce replay and older nonce", func(t *testing.T) {
		a := it.start("alice")
		b := it.initOp(a, a.Nonce, "ChallengeSMS")
		code := it.lastHook().OTP
		if st, c := it.validate(a, a.Nonce, code); st != 400 || c.Status.Code != "1004" {
			t.Fatalf("nonce of an older step: %d %+v", st, c)
		}
		if st, _ := it.validate(a, b.Nonce, code); st != 200 {
			t.Fatalf("right code: %d", st)
		}
		if st, c := it.validate(a, b.Nonce, code); st != 400 || c.Status.Code != "1004" {
			t.Fatalf("replayed nonce: %d %+v", st, c)
		}
	})
	t.Run("finalize failure reasons", func(t *testing.T) {
		for _, reason := range []string{
			"wrong_answer", "too_many_attempts", "channel_comm_error", "other_error",
			"unavailable_for_user", "user_abandoned", "user_timedout",
		} {
			a := it.start("alice")
			b := it.initOp(a, a.Nonce, "ChallengeFIDO2")
			st, c := it.put(map[string]any{
				"challengeop": "Finalize", "correlationId": a.CorrelationID, "nonce": b.Nonce,
				"challengeResult": "Failure", "challengeResultReason": reason,
			})
			if st != 200 || c.Status.Status != "failed" || c.Status.Message != reason || it.gate(a.SessionID) != 401 {
				t.Fatalf("Failure %s: %d %+v", reason, st, c)
			}
			if st, _ := it.put(map[string]any{
				"challengeop": "Finalize", "correlationId": a.CorrelationID,
				"nonce": c.Nonce, "challengeResult": "Success",
			}); st != 400 {
				t.Fatalf("PUT on a closed correlationId: %d", st)
			}
		}
	})
	t.Run("expired correlationId", func(t *testing.T) {
		st, a := it.call("POST", `{"clientInfo":{"clientId":"`+itClient+`","clientSecret":"`+itClientSecret+
			`"},"userInfo":{"userId":"alice"},"timeToLiveInSec":1}`)
		if st != 200 {
			t.Fatalf("POST: %d %+v", st, a)
		}
		b := it.initOp(a, a.Nonce, "ChallengeOMATOTP")
		// A challenge lasts at least timeToLiveInSec and at most one second
		// more (times are whole seconds): 2.1 s after the POST it is over.
		time.Sleep(2100 * time.Millisecond) // let it lapse
		code, err := state.TOTPPolicy{}.Defaults().Code(itTOTPSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st, c := it.validate(a, b.Nonce, code); st != 400 || c.Status.Code != "1013" {
			t.Fatalf("Validate after timeToLiveInSec: %d %+v", st, c)
		}
		if it.gate(a.SessionID) != 401 {
			t.Fatal("the gate let an expired challenge's session through")
		}
	})
	t.Run("refusals", func(t *testing.T) {
		a := it.start("alice")
		if st, c := it.put(map[string]any{
			"challengeop": "Init", "correlationId": a.CorrelationID, "nonce": a.Nonce,
			"challengedata": map[string]any{"factor": "ChallengeSmokeSignal"},
		}); st != 400 || c.Status.Code != "1006" {
			t.Fatalf("unknown factor: %d %+v", st, c)
		}
		b := it.initOp(a, a.Nonce, "ChallengeFIDO2")
		if st, c := it.validate(a, b.Nonce, "assertion"); st != 400 || c.Status.Code != "1008" {
			t.Fatalf("Validate of a non-passive factor: %d %+v", st, c)
		}
		if st, c := it.validate(itAnswer{CorrelationID: "AAAA"}, b.Nonce, "1"); st != 400 || c.Status.Code != "1003" {
			t.Fatalf("unknown correlationId: %d %+v", st, c)
		}
		bob := it.start("bob")
		if bob.Status.Status != "missing registration" {
			t.Fatalf("bob: %+v", bob)
		}
		if st, c := it.put(map[string]any{
			"challengeop": "Init", "correlationId": bob.CorrelationID, "nonce": bob.Nonce,
			"challengedata": map[string]any{"factor": "ChallengeYOTP"},
		}); st != 400 || c.Status.Code != "1007" {
			t.Fatalf("bob's YOTP: %d %+v", st, c)
		}
		if st, c := it.call("POST", `{"clientInfo":{"clientId":"`+itClient+`","clientSecret":"wrong"}}`); st != 401 {
			t.Fatalf("wrong client secret: %d %+v", st, c)
		}
	})
	logs, err := os.ReadFile(it.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "authn step done") {
		t.Fatalf("log capture did not see the flow:\n%s", logs)
	}
	for _, secret := range append(secrets, itClientSecret, "smtp-pass-77", "hook-secret", itTOTPSecret) {
		if strings.Contains(string(logs), secret) {
			t.Fatalf("Caddy's log contains %q", secret)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAuthnChallengeSurvivesReload starts a mail challenge, reloads
// Caddy's config, and finishes it: the correlationId, the nonce and the
// code live in the store with the session.
func TestAuthnChallengeSurvivesReload(t *testing.T) {
	it := startAuthnIT(t)
	a := it.start("alice")
	b := it.initOp(a, a.Nonce, "ChallengeEmail")
	code := it.mailedCode("alice@example.com")
	// A changed config (another TTL bound) is a real reload, not a no-op.
	it.tester.InitServer(expand(strings.Replace(it.cfg, "authn {", "authn {\n\t\t\tmax_ttl 2h", 1), it.port), "caddyfile")
	if st, c := it.validate(a, b.Nonce, code); st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("Validate after reload: %d %+v", st, c)
	}
	if g := it.gate(a.SessionID); g != 200 {
		t.Fatalf("gate after reload: %d", g)
	}
}

// TestAuthnDemoAgainstCaddyfileExample runs the README's walk-through on
// Caddyfile.example: demo-client/demo-secret, the demo user's TOTP, and the
// gate then lets the session through to the demo app.
func TestAuthnDemoAgainstCaddyfileExample(t *testing.T) {
	cfg, _ := exampleConfig(t)
	tester, port := newTester(t, cfg)
	it := &authnIT{t: t, tester: tester, base: fmt.Sprintf("http://localhost:%d", port)}
	st, a := it.call("POST", `{"clientInfo":{"clientId":"demo-client","clientSecret":"demo-secret"},"userInfo":{"userId":"demo"}}`)
	if st != 200 || a.Status.Status != "pending verification" {
		t.Fatalf("POST: %d %+v", st, a)
	}
	b := it.initOp(a, a.Nonce, "ChallengeOMATOTP")
	code, err := state.TOTPPolicy{}.Defaults().Code("JBSWY3DPEHPK3PXP", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, c := it.validate(a, b.Nonce, code); st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("Validate: %d %+v", st, c)
	}
	req, _ := http.NewRequest("GET", it.base+"/", nil)
	req.AddCookie(&http.Cookie{Name: "authsession", Value: a.SessionID})
	resp, err := tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello demo") {
		t.Fatalf("gate: %d %s", resp.StatusCode, body)
	}
	// The demo user can also choose ChallengeEmail (development delivery).
	a2 := it.start2("demo-client", "demo-secret", "demo")
	it.initOp(a2, a2.Nonce, "ChallengeEmail")
}

func (it *authnIT) start2(client, secret, user string) itAnswer {
	it.t.Helper()
	st, a := it.call("POST", `{"clientInfo":{"clientId":"`+client+`","clientSecret":"`+secret+`"},"userInfo":{"userId":"`+user+`"}}`)
	if st != 200 {
		it.t.Fatalf("POST: %d %+v", st, a)
	}
	return a
}
