package bench_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// codeBox is a Deliverer that keeps the last code (no I/O).
type codeBox struct {
	mu   sync.Mutex
	code string
}

func (c *codeBox) Deliver(_ context.Context, m delivery.Message) error {
	c.mu.Lock()
	c.code = m.Code
	c.mu.Unlock()
	return nil
}

// BenchmarkAuthnChallenge is one whole challenge flow per iteration: POST
// /authn/v1 (Basic auth cached, integration client checked on its SHA-256),
// PUT Init of ChallengeEmail (a code made, hashed and handed to an
// in-memory delivery) and PUT Validate with that code (the session becomes
// authenticated). Each user is new, so the hourly send limit stays out.
func BenchmarkAuthnChallenge(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("admin-password"), 10)
	sum := sha256.Sum256([]byte("demo-secret"))
	clients, err := handlers.NewAuthnClients(map[string]string{"demo-client": hex.EncodeToString(sum[:])})
	if err != nil {
		b.Fatal(err)
	}
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	defer st.Close()
	// No users file: unknown users are accepted with the mail factor, their
	// id being a mail address.
	box := &codeBox{}
	mux := http.NewServeMux()
	(&handlers.Authn{
		Env: benchEnv(st), Auth: handlers.NewBasicAuth(map[string][]byte{"admin": hash}), Clients: clients,
		AcceptUnknownUsers: true, DefaultFactors: []string{state.FactorEmail},
		OTP: state.OTPPolicy{}.Defaults(), TOTP: state.TOTPPolicy{}.Defaults(), Key: make([]byte, 32),
		Delivery: box,
	}).Register(mux)
	call := func(method, body string) map[string]any {
		r := httptest.NewRequest(method, "/authn/v1", strings.NewReader(body))
		r.SetBasicAuth("admin", "admin-password")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var a map[string]any
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &a) != nil {
			b.Fatalf("%s: %d %s", method, w.Code, w.Body)
		}
		return a
	}
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		a := call(http.MethodPost, `{"clientInfo":{"clientId":"demo-client","clientSecret":"demo-secret"},`+
			`"userInfo":{"userId":"user`+strconv.Itoa(i)+`@example.com"}}`)
		cid := a["correlationId"].(string)
		a = call(http.MethodPut, `{"challengeop":"Init","correlationId":"`+cid+`","nonce":"`+a["nonce"].(string)+
			`","challengedata":{"factor":"ChallengeEmail"}}`)
		box.mu.Lock()
		code := box.code
		box.mu.Unlock()
		a = call(http.MethodPut, `{"challengeop":"Validate","correlationId":"`+cid+`","nonce":"`+a["nonce"].(string)+
			`","challengeAnswer":"`+code+`"}`)
		if a["status"].(map[string]any)["status"] != "authenticated" {
			b.Fatalf("Validate: %v", a)
		}
	}
	cpu.report(b)
}
