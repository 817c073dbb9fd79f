package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// BenchmarkRiskAnalyzerUpdate is the risk analyzer's main call, PUT
// .../updatesessionsecurely with the vendor's JSON example (string
// scalars), on one existing session: Basic auth (cached), decoding, the
// status change through Store.Update and the JSON answer.
func BenchmarkRiskAnalyzerUpdate(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("admin-password"), 10)
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	defer st.Close()
	const id = "96eb744b-b84e-4c13-8b78-06b64ad81d94"
	s := state.NewSession(id, benchSealer, time.Now(), 8*time.Hour, 0)
	s.UserID = "alice"
	if err := st.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	(&handlers.RiskAnalyzer{
		Env: benchEnv(st), Auth: handlers.NewBasicAuth(map[string][]byte{"admin": hash}),
		Success: map[int]bool{0: true},
	}).Register(mux)
	body := []byte(`{"requestId":"` + id + `","authenticationStatus":"0","clientType":"0","clientApplication":"OAA Update","clientVersion":"12.2.1.4.2"}`)
	r := httptest.NewRequest(http.MethodPut, handlers.RiskBase+"/updatesessionsecurely", nil)
	r.SetBasicAuth("admin", "admin-password")
	r.Header.Set("Content-Type", "application/json")
	var w discardWriter
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.reset()
		mux.ServeHTTP(&w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	cpu.report(b)
}

// BenchmarkOTPSessionPut is the OTP family's main call, PUT
// /sessions/{id} with passedLoginOTP:false on a new session each time: a
// session created, a login OTP made and hashed, and the JSON answer
// (delivery skipped: no users file).
func BenchmarkOTPSessionPut(b *testing.B) {
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	defer st.Close()
	mux := http.NewServeMux()
	(&handlers.OTPSessions{
		Env: benchEnv(st), Auth: handlers.NewBearerAuth([][32]byte{sha256.Sum256([]byte("demo-token"))}),
		OTP: state.OTPPolicy{}.Defaults(), Key: make([]byte, 32), ExposeOTP: true, CookieName: "authsession",
	}).Register(mux)
	var w discardWriter
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		// A new user each time: the per-user hourly send limit stays out of it.
		body := fmt.Appendf(nil, `{"userId":"738e379f-fe30-45ab-819c-%012x","passedLoginOTP":false}`, i)
		r := httptest.NewRequest(http.MethodPut, fmt.Sprintf("/sessions/ddac0bf6-e618-499e-b6ee-%012x", i), bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer demo-token")
		r.Header.Set("Content-Type", "application/json")
		w.reset()
		mux.ServeHTTP(&w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	cpu.report(b)
}
