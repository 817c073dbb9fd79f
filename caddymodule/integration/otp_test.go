package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/smtptest"
)

const (
	itToken     = "integration-token-4f9a2c"
	itSessionID = "5b0c6a4e-3d2f-4a1b-9c8d-7e6f5a4b3c2d"
)

var mailCodeRE = regexp.MustCompile(`one-time code is ([0-9]+)`)

// TestOTPMailFlowThroughCaddy: PUT /sessions/{id} mails a code through a
// real loopback SMTP server; the test reads it from the mail, verifies it,
// and the session then passes the gate. Caddy's own log (all levels) is
// captured and must hold no code, token, password or TOTP secret.
func TestOTPMailFlowThroughCaddy(t *testing.T) {
	smtpSrv := smtptest.Start(t, "mailer", "smtp-pass-77")
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"alice-id","login":"alice","mail":"alice@example.com",
		"totp_secret":"JBSWY3DPEHPK3PXP","factors":["ChallengeEmail","ChallengeOMATOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "caddy.log")
	tester, port := newTester(t, fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	log {
		output file %s
		format json
		level DEBUG
	}
	authsession {
		api_token %s
		users_file %s
		otp {
			delivery_timeout 10s
			smtp {
				host 127.0.0.1
				port %d
				tls none
				username mailer
				password smtp-pass-77
				from login@example.com
			}
		}
	}
}
http://localhost:{PORT} {
	authsession api
	authsession gate
	respond "protected content"
}
`, logFile, itToken, users, smtpSrv.Port))
	base := fmt.Sprintf("http://localhost:%d", port)

	do := func(method, path, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+itToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Missing and wrong tokens: 401 JSON:API.
	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest("PUT", base+"/sessions/"+itSessionID, strings.NewReader(`{}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/vnd.api+json" ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("auth %q: %d %v", auth, resp.StatusCode, resp.Header)
		}
	}

	resp, body := do("PUT", "/sessions/"+itSessionID, `{"userId":"alice-id","passedLoginOTP":false}`)
	var ans struct{ OTP, ExpiresAt string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &ans) != nil || ans.ExpiresAt == "" {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mail, err := smtpSrv.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := mailCodeRE.FindStringSubmatch(mail.Data)
	if m == nil || m[1] != ans.OTP || mail.To[0] != "alice@example.com" || mail.User != "mailer" {
		t.Fatalf("mail %+v", mail)
	}
	code := m[1]

	// Not yet through the gate.
	gate := func() int { return cookieStatus(t, base+"/app", "authsession", itSessionID) }
	if st := gate(); st != 401 {
		t.Fatalf("gate before verify: %d", st)
	}
	if resp, body := do("POST", "/user/otp/verify", `{"otp":"`+wrongCode(code)+`","types":["login"],"sessionId":"`+itSessionID+`"}`); resp.StatusCode != 404 {
		t.Fatalf("wrong code: %d %s", resp.StatusCode, body)
	}
	if resp, body := do("POST", "/user/otp/verify", `{"otp":"`+code+`","types":["login"],"sessionId":"`+itSessionID+`"}`); resp.StatusCode != 204 {
		t.Fatalf("verify: %d %s", resp.StatusCode, body)
	}
	if st := gate(); st != 200 {
		t.Fatalf("gate after verify: %d", st)
	}
	if resp, _ := do("POST", "/user/otp/verify", `{"otp":"`+code+`","types":["login"],"sessionId":"`+itSessionID+`"}`); resp.StatusCode != 404 {
		t.Fatalf("reused code: %d", resp.StatusCode)
	}

	// No secret in Caddy's log, at any level.
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "otp session created") {
		t.Fatalf("log capture did not see the flow:\n%s", logs)
	}
	for _, secret := range []string{code, itToken, "smtp-pass-77", "JBSWY3DPEHPK3PXP", itSessionID} {
		if strings.Contains(string(logs), secret) {
			t.Fatalf("Caddy's log contains %q:\n%s", secret, logs)
		}
	}
}

// TestOTPSMTPDownThroughCaddy: with the mail server down the answer is 502
// channel_comm_error, quickly (the one-minute delivery timeout is not what
// ends it: the test's own deadline is shorter).
func TestOTPSMTPDownThroughCaddy(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"bob","login":"bob","mail":"bob@example.com"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tester, port := newTester(t, fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	authsession {
		api_token %s
		users_file %s
		otp {
			delivery_timeout 1m
			delivery_attempts 2
			smtp {
				host 127.0.0.1
				port %d
				tls none
				from login@example.com
			}
		}
	}
}
http://localhost:{PORT} {
	authsession api
}
`, itToken, users, freePort()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", fmt.Sprintf("http://localhost:%d/sessions/%s", port, "0c8e2f7a-9b1d-4c3e-8f5a-6d7b8c9e0f1a"),
		strings.NewReader(`{"userId":"bob","passedLoginOTP":false}`))
	req.Header.Set("Authorization", "Bearer "+itToken)
	req.Header.Set("Content-Type", "application/json") // a body without a media type is refused (415)
	resp, err := tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(b), `"code":"channel_comm_error"`) || strings.Contains(string(b), `"otp"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// TestOTPSeedAgainstCaddyfileExample sends the seed's request, as written,
// to Caddyfile.example (ports moved to free ones, the users file found from
// the test's directory) with the demo token: 200 {otp, expiresAt} the first
// time, 204 after, although its userId is in no users file.
func TestOTPSeedAgainstCaddyfileExample(t *testing.T) {
	cfg, _ := exampleConfig(t)
	tester, port := newTester(t, cfg)
	const id = "ddac0bf6-e618-499e-b6ee-2c45530ea8ed"
	seed := `{"userId":"738e379f-fe30-45ab-819c-ba88804b6368","passedLoginOTP":true}`
	put := func() (int, string) {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("http://localhost:%d/sessions/%s", port, id), strings.NewReader(seed))
		req.Header.Set("Authorization", "Bearer demo-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	st, body := put()
	var ans struct{ OTP, ExpiresAt string }
	if st != 200 || json.Unmarshal([]byte(body), &ans) != nil || len(ans.OTP) != 6 {
		t.Fatalf("first PUT: %d %s", st, body)
	}
	if _, err := time.Parse(time.RFC3339, ans.ExpiresAt); err != nil {
		t.Fatalf("expiresAt %q", ans.ExpiresAt)
	}
	if st, body := put(); st != 204 || body != "" {
		t.Fatalf("second PUT: %d %s", st, body)
	}
}
