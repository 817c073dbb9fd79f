package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/handlers"
)

// familiesFileConfig serves every family that keeps state on a file store.
func familiesFileConfig(store, upstream string) string {
	return `{
	{ADMIN}
	http_port {PORT}
	auto_https off
	authsession {
		` + store + `
		seal_key 3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=
		api_user admin ` + fileTestAPIHash + `
		api_token restart-token
		otp {
			key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
		}
		authn {
			client restart-client 5cf7b37184458cf2f735bc1a19379a737b8fa286481669f2f32dbb0e232fdbde
			accept_unknown_users
			default_factors ChallengeFIDO2
		}
	}
}
http://localhost:{PORT} {
	authsession api
	authsession gate
	reverse_proxy ` + upstream + `
}
`
}

// TestFileStoreRestartEveryFamily creates state through the OAM, the
// risk-analyzer, the OTP and the challenge-flow families on a file store, stops using the file
// and starts again on it: the sessions, the raw risk values and the live
// OTP and the open challenge are back, and the gate decides as before.
func TestFileStoreRestartEveryFamily(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "upstream")
	}))
	defer up.Close()
	upstream := strings.TrimPrefix(up.URL, "http://")
	path := filepath.Join(t.TempDir(), "sessions.db")
	fileCfg := familiesFileConfig("store file "+path, upstream)
	tester, port := newTester(t, fileCfg)
	base := fmt.Sprintf("http://localhost:%d", port)
	bearer := map[string]string{"Authorization": "Bearer restart-token", "Content-Type": "application/json"}

	// OAM: an authenticated session.
	code, body := oamCall(t, http.MethodPost, base+handlers.OAMBase+"/session", `{"userId":"oam-user"}`)
	var oam struct {
		SessionID string `json:"sessionId"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &oam) != nil {
		t.Fatalf("OAM create: %d %s", code, body)
	}
	// Risk analyzer: a session, then a success report with a device.
	const raID = "0d9b8a7c-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
	code, body = oamCall(t, http.MethodPost, base+handlers.RiskBase, `{"requestId":"`+raID+`","user":{"loginName":"ra-user"}}`)
	if code != http.StatusOK {
		t.Fatalf("RA create: %d %s", code, body)
	}
	code, body = oamCall(t, http.MethodPut, base+handlers.RiskBase+"/updatesessionsecurely",
		`{"requestId":"`+raID+`","authenticationStatus":0,"clientType":4,"registerDevice":true,"analyzePatterns":true}`)
	if code != http.StatusOK {
		t.Fatalf("RA update: %d %s", code, body)
	}
	// OTP: a session pending verification with a live login OTP.
	const otpID = "7c6d5e4f-3a2b-4c1d-9e8f-0a1b2c3d4e5f"
	code, _, body = call(t, http.MethodPut, base+"/sessions/"+otpID, bearer, `{"userId":"1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b","passedLoginOTP":false}`)
	var issued struct {
		OTP string `json:"otp"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &issued) != nil || issued.OTP == "" {
		t.Fatalf("OTP session: %d %s", code, body)
	}
	if got := gateStatus(t, base, otpID); got != http.StatusUnauthorized {
		t.Fatalf("gate before the OTP: %d", got)
	}
	// Challenge flow: a FIDO2 challenge started (Init), to be finalized
	// after the restart with the nonce handed out before it.
	var ch struct{ CorrelationID, Nonce, SessionID string }
	code, body = oamCall(t, http.MethodPost, base+"/authn/v1",
		`{"clientInfo":{"clientId":"restart-client","clientSecret":"restart-secret"},"userInfo":{"userId":"fido-user"}}`)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &ch) != nil {
		t.Fatalf("authn POST: %d %s", code, body)
	}
	code, body = oamCall(t, http.MethodPut, base+"/authn/v1",
		`{"challengeop":"Init","correlationId":"`+ch.CorrelationID+`","nonce":"`+ch.Nonce+`","challengedata":{"factor":"ChallengeFIDO2"}}`)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &ch) != nil {
		t.Fatalf("authn Init: %d %s", code, body)
	}

	// Stop using the file, then start again on it.
	tester.InitServer(expand(familiesFileConfig("store memory", upstream), port), "caddyfile")
	if got := gateStatus(t, base, oam.SessionID); got != http.StatusUnauthorized {
		t.Fatalf("gate on the memory store: %d", got)
	}
	tester.InitServer(expand(fileCfg, port), "caddyfile")

	if got := gateStatus(t, base, oam.SessionID); got != http.StatusOK {
		t.Fatalf("OAM session after restart: gate %d", got)
	}
	code, body = oamCall(t, http.MethodGet, base+handlers.RiskBase+"/"+raID, "")
	if code != http.StatusOK || !strings.Contains(body, `"sessionStatus":"authenticated","authenticationStatus":0,"clientType":4`) {
		t.Fatalf("RA fetch after restart: %d %s", code, body)
	}
	if got := gateStatus(t, base, raID); got != http.StatusOK {
		t.Fatalf("RA session after restart: gate %d", got)
	}
	// The OTP issued before the restart still verifies, once.
	verify := `{"otp":"` + issued.OTP + `","types":["login"],"sessionId":"` + otpID + `"}`
	if code, _, body := call(t, http.MethodPost, base+"/user/otp/verify", bearer, verify); code != http.StatusNoContent {
		t.Fatalf("OTP from before the restart: %d %s", code, body)
	}
	if got := gateStatus(t, base, otpID); got != http.StatusOK {
		t.Fatalf("OTP session after verification: gate %d", got)
	}
	if code, _, _ := call(t, http.MethodPost, base+"/user/otp/verify", bearer, verify); code != http.StatusNotFound {
		t.Fatalf("OTP reused after the restart: %d", code)
	}
	// The challenge from before the restart finalizes with its nonce.
	code, body = oamCall(t, http.MethodPut, base+"/authn/v1",
		`{"challengeop":"Finalize","correlationId":"`+ch.CorrelationID+`","nonce":"`+ch.Nonce+`","challengeResult":"Success"}`)
	if code != http.StatusOK || !strings.Contains(body, `"status":"authenticated"`) {
		t.Fatalf("authn Finalize after restart: %d %s", code, body)
	}
	if got := gateStatus(t, base, ch.SessionID); got != http.StatusOK {
		t.Fatalf("authn session after restart: gate %d", got)
	}
}
