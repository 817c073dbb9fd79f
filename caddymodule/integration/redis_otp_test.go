package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/internal/redistest"
)

// startRedisOTPCaddy runs bin/caddy with the OTP session family on a Redis
// store; instances that share sealKey and otpKey act as one.
func startRedisOTPCaddy(t *testing.T, bin string, redisPort int, sealKey, otpKey string) string {
	t.Helper()
	dir := t.TempDir()
	port, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	authsession {
		store redis redis://127.0.0.1:%d {
			key_prefix otp-it:
			timeout 2s
		}
		seal_key %s
		api_token split-token
		otp {
			key %s
			max_attempts 5
		}
	}
}
http://127.0.0.1:%d {
	authsession api
	authsession gate
	respond "ok"
}
`, admin, redisPort, sealKey, otpKey, port)
	return runCaddy(t, bin, dir, cfg, port)
}

func bearerCall(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer split-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRedisOTPAttemptsSplitOverInstances: wrong answers sent alternately
// to two instances count once each against the one limit, so a brute force
// spread over instances is blocked after max_attempts in all.
func TestRedisOTPAttemptsSplitOverInstances(t *testing.T) {
	bin := caddyBin(t)
	redisPort := redistest.Start(t).Port()
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	seal, otpKey := key(), key()
	a := startRedisOTPCaddy(t, bin, redisPort, seal, otpKey)
	b := startRedisOTPCaddy(t, bin, redisPort, seal, otpKey)

	const sid = "5a0b2c7e-1d3f-4e6a-9b8c-7d6e5f4a3b2c"
	code, _, body := bearerCall(t, "PUT", a+"/sessions/"+sid, `{"userId":"8f14e45f-ceea-467f-a0e6-2b5c0a1d9e3b","passedLoginOTP":false}`)
	if code != http.StatusOK {
		t.Fatalf("PUT session on A: %d %s", code, body)
	}
	var issued struct {
		OTP string `json:"otp"`
	}
	if err := json.Unmarshal([]byte(body), &issued); err != nil || len(issued.OTP) != 6 {
		t.Fatalf("issued %s: %v", body, err)
	}
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, issued.OTP)+1)%1000000)
	verify := `{"otp":"` + wrong + `","types":["login"],"sessionId":"` + sid + `"}`
	for i := range 4 {
		base := []string{a, b}[i%2]
		if code, _, body := bearerCall(t, "POST", base+"/user/otp/verify", verify); code != http.StatusNotFound {
			t.Fatalf("wrong answer %d: %d %s", i+1, code, body)
		}
	}
	// The fifth wrong answer, on B, reaches the limit of five: blocked.
	code, hdr, body := bearerCall(t, "POST", b+"/user/otp/verify", verify)
	if code != http.StatusForbidden || !strings.Contains(body, "challenge-blocked") || hdr.Get("Retry-After") == "" {
		t.Fatalf("fifth wrong answer over two instances: %d %s", code, body)
	}
	// Blocked on A as well, even with the right code.
	right := `{"otp":"` + issued.OTP + `","types":["login"],"sessionId":"` + sid + `"}`
	if code, _, body := bearerCall(t, "POST", a+"/user/otp/verify", right); code == http.StatusNoContent {
		t.Fatalf("right code accepted on A after the block: %d %s", code, body)
	}
	if code, _, _ := call(t, "GET", a+"/", map[string]string{"Cookie": "authsession=" + sid}, ""); code != http.StatusUnauthorized {
		t.Fatalf("gate on A for a blocked session: %d", code)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
