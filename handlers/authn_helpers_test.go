package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

const (
	authnClientID     = "app-client"
	authnClientSecret = "app-secret-9f3c"
	authnTOTPSecret   = "JBSWY3DPEHPK3PXP"
)

// authnFixture is the challenge flow on a memory store with an injected
// clock and a delivery that keeps the messages.
type authnFixture struct {
	t     testing.TB
	clk   *fakeClock
	store *state.Memory
	a     *Authn
	mux   http.Handler // the family, checked against docs/openapi/authn.yaml

	mu        sync.Mutex
	sent      []delivery.Message
	deliverOK bool
}

func newAuthnFixture(t testing.TB) *authnFixture {
	t.Helper()
	f := &authnFixture{t: t, clk: testkit.NewClock(t0), deliverOK: true}
	f.store = state.NewMemory(state.MemoryOptions{Now: f.clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = f.store.Close() })
	sealer, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(`{"users":[
		{"id":"alice","login":"alice","group":"Staff","mail":"alice@example.com","phone":"+1 555 555 1234",
		 "totp_secret":"`+authnTOTPSecret+`","factors":["ChallengeEmail","ChallengeSMS","ChallengeOMATOTP","ChallengeFIDO2","ChallengeYOTP"]},
		{"id":"bob","login":"bob","factors":["ChallengeYOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(authnClientSecret))
	clients, err := NewAuthnClients(map[string]string{authnClientID: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{
		Store: f.store, Now: f.clk.Now, Sealer: sealer, Logger: zap.NewNop(),
		Policy: Policy{Lifetime: 8 * time.Hour, BlockFor: 15 * time.Minute, StoreTimeout: 5 * time.Second},
	}
	f.a = &Authn{
		Env: env, Auth: testAuth(), Clients: clients, Users: users.Directory("UserIdentityStore1"),
		OTP:  state.OTPPolicy{BlockFor: 15 * time.Minute}.Defaults(),
		TOTP: state.TOTPPolicy{}.Defaults(),
		Key:  []byte("0123456789abcdef0123456789abcdef"),
		Delivery: delivererFunc(func(_ context.Context, m delivery.Message) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if !f.deliverOK {
				return &delivery.Error{Channel: m.Channel, Err: context.DeadlineExceeded}
			}
			f.sent = append(f.sent, m)
			return nil
		}),
	}
	mux := http.NewServeMux()
	f.a.Register(mux)
	f.mux = contract.New(t).Handler(mux)
	return f
}

// lastCode returns the code of the last message delivered.
func (f *authnFixture) lastCode() delivery.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		f.t.Fatal("no code was delivered")
	}
	return f.sent[len(f.sent)-1]
}

func (f *authnFixture) do(method, body string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, authnPathV1, strings.NewReader(body))
	req.SetBasicAuth(apiUser, apiPass)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, req)
	return w
}

// authnAnswer is any answer of the family as a client reads it.
type authnAnswer struct {
	Status struct {
		Code, Message, Status string
	} `json:"status"`
	CorrelationID string `json:"correlationId"`
	Nonce         string `json:"nonce"`
	SessionID     string `json:"sessionId"`
	InitContext   *struct {
		ChallengeInfo []struct {
			Factor        string `json:"factor"`
			FactorContext struct {
				Prompts []struct{ Key, Value string } `json:"prompts"`
			} `json:"factorContext"`
		} `json:"challengeInfo"`
	} `json:"initContext"`
}

func readAuthn(t testing.TB, w *httptest.ResponseRecorder) authnAnswer {
	t.Helper()
	var a authnAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", w.Code, err, w.Body)
	}
	return a
}

// start runs POST for user and returns the answer (200 expected).
func (f *authnFixture) start(user string) authnAnswer {
	f.t.Helper()
	w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"userInfo":{"userId":"`+user+`","groups":["Default"]}}`)
	if w.Code != 200 {
		f.t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	return readAuthn(f.t, w)
}

// put sends a PUT with the given members and returns code and answer.
func (f *authnFixture) put(fields map[string]any) (int, authnAnswer) {
	f.t.Helper()
	b, _ := json.Marshal(fields)
	w := f.do("PUT", string(b))
	return w.Code, readAuthn(f.t, w)
}

func initReq(cid, nonce, factor string) map[string]any {
	m := map[string]any{"challengeop": "Init", "correlationId": cid, "challengedata": map[string]any{"factor": factor}}
	if nonce != "" {
		m["nonce"] = nonce
	}
	return m
}

func validateReq(cid, nonce, answer string) map[string]any {
	return map[string]any{"challengeop": "Validate", "correlationId": cid, "nonce": nonce, "challengeAnswer": answer}
}

func finalizeReq(cid, nonce, result, reason string) map[string]any {
	return map[string]any{
		"challengeop": "Finalize", "correlationId": cid, "nonce": nonce,
		"challengeResult": result, "challengeResultReason": reason,
	}
}

// session returns the stored session of an answer's sessionId.
func (f *authnFixture) session(id string) *state.Session {
	f.t.Helper()
	s, err := f.store.Get(context.Background(), state.KeyOf(id))
	if err != nil {
		f.t.Fatalf("session: %v", err)
	}
	return s
}

// totpCode returns the TOTP code of the test secret at the fixture's time.
func (f *authnFixture) totpCode() string {
	c, err := f.a.TOTP.Code(authnTOTPSecret, f.clk.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func wrongOf(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// delivererFunc is a Deliverer written as a function.
type delivererFunc func(context.Context, delivery.Message) error

func (f delivererFunc) Deliver(ctx context.Context, m delivery.Message) error { return f(ctx, m) }
