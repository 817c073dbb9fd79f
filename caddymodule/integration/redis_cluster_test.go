package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
)

// demoAdminHash is the bcrypt hash of "admin-password" (Caddyfile.example).
const demoAdminHash = "$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW"

// startProc starts a child process and kills it when the test ends.
func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s never answered", url)
}

// runCaddy writes cfg to dir, runs bin/caddy on it until the test ends,
// and returns the base URL of its site on port once it answers.
func runCaddy(t *testing.T, bin, dir, cfg string, port int) string {
	t.Helper()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, "run", "--config", path, "--adapter", "caddyfile")
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHTTP(t, base+"/")
	return base
}

// startRedisCaddy runs bin/caddy with the authsession API and gate on a Redis
// store, and returns its base URL.
func startRedisCaddy(t *testing.T, bin string, redisPort int, sealKey string) string {
	t.Helper()
	dir := t.TempDir()
	port, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	storage file_system %s
	authsession {
		store redis redis://127.0.0.1:%d {
			key_prefix it:
			timeout 2s
			max_staleness 5s
		}
		seal_key %s
		api_user admin %s
	}
}
http://127.0.0.1:%d {
	authsession api
	authsession gate {
		session_header Authorization Bearer
	}
	respond "ok"
}
`, admin, dir, redisPort, sealKey, demoAdminHash, port)
	return runCaddy(t, bin, dir, cfg, port)
}

func redisCall(t *testing.T, method, url, body, sid string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if sid != "" {
		req.Header.Set("Authorization", "Bearer "+sid)
	} else {
		req.SetBasicAuth("admin", "admin-password")
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTwoCaddyInstancesOnRedis(t *testing.T) {
	bin := caddyBin(t)
	redis := redistest.Start(t)
	redisPort := redis.Port()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	seal := base64.StdEncoding.EncodeToString(key)
	a := startRedisCaddy(t, bin, redisPort, seal)
	b := startRedisCaddy(t, bin, redisPort, seal)
	oam := "/oam/services/rest/access/api/v1/session"

	// Create on A, pass the gate on B.
	status, body := redisCall(t, "POST", a+oam, `{"userId":"alice"}`, "")
	if status != 200 {
		t.Fatalf("create on A: %d %s", status, body)
	}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.SessionID == "" {
		t.Fatalf("create answer %s", body)
	}
	sid := created.SessionID
	if status, body := redisCall(t, "GET", b+"/", "", sid); status != 200 {
		t.Fatalf("gate on B with a session made on A: %d %s", status, body)
	}
	if status, _ := redisCall(t, "GET", a+"/", "", sid); status != 200 {
		t.Fatalf("gate on A: %d", status)
	}

	// Delete on B, refused on A within moments (the invalidation takes
	// milliseconds; the bound is loose for a loaded CI machine).
	if status, body := redisCall(t, "DELETE", b+oam+"?sessionId="+sid, "", ""); status != 200 {
		t.Fatalf("delete on B: %d %s", status, body)
	}
	start := time.Now()
	for {
		status, _ := redisCall(t, "GET", a+"/", "", sid)
		if status == 401 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("session deleted on B still passes A's gate after %v (status %d)", time.Since(start), status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("deletion on B refused on A after %v", time.Since(start))

	// Redis stopped: writes answer 503, a cached session passes the gate
	// for max_staleness (5s), then the gate answers 503.
	_, body = redisCall(t, "POST", a+oam, `{"userId":"bob"}`, "")
	_ = json.Unmarshal([]byte(body), &created)
	bob := created.SessionID
	if status, _ := redisCall(t, "GET", a+"/", "", bob); status != 200 {
		t.Fatalf("gate on A for bob: %d", status)
	}
	redis.Stop()
	if status, body := redisCall(t, "POST", a+oam, `{"userId":"carol"}`, ""); status != 503 {
		t.Errorf("create while Redis is down: %d %s, want 503", status, body)
	}
	if status, _ := redisCall(t, "GET", a+"/", "", bob); status != 200 {
		t.Errorf("cached session on A right after Redis stopped: %d, want 200", status)
	}
	refused := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, _ := redisCall(t, "GET", a+"/", "", bob); status == 503 {
			refused = true
			break
		}
	}
	if !refused {
		t.Error("gate kept serving a cached session past max_staleness")
	}

	// Redis restarted: recovery without restarting Caddy.
	redis.Restart()
	ok := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, _ := redisCall(t, "POST", b+oam, `{"userId":"dave"}`, ""); status == 200 {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("instances did not recover after Redis restarted")
	}
}
