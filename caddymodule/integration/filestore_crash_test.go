package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// caddyBin returns the bin/caddy built by `make bin/caddy`, or skips.
func caddyBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("AUTHSESSION_CADDY_BIN")
	if bin == "" {
		bin, _ = filepath.Abs(filepath.Join("..", "..", "bin", "caddy"))
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIPPED: %s not found; run `make bin/caddy` (or `make test`) to build it", bin)
	}
	return bin
}

// caddyProc is a bin/caddy child process.
type caddyProc struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

// lockedBuffer collects a child's output, written by os/exec's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startCaddy(t *testing.T, bin, dir, caddyfile, base string) *caddyProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", caddyfile)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &caddyProc{cmd: cmd, out: out}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/") // any answer: the server is up
		if err == nil {
			_ = resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("bin/caddy did not start: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *caddyProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill() // SIGKILL
		_ = p.cmd.Wait()
	}
}

// TestFileStoreCrash drives concurrent session creations and deletions
// against bin/caddy with a file store, kills it with SIGKILL in the middle
// of the load, starts it again on the same file and checks that every write
// that had been answered is there: created sessions pass the gate, deleted
// ones do not, and the file opens cleanly.
func TestFileStoreCrash(t *testing.T) {
	bin := caddyBin(t)
	dir := t.TempDir()
	port := freePort()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	upPort := freePort()
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	authsession {
		store file %s/sessions.db {
			flush_interval 100ms
		}
		seal_key %s
		cookie {
			insecure
		}
		api_user admin %s
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	authsession api
	authsession gate
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	respond "upstream"
}
`, dir, base64.StdEncoding.EncodeToString(state.NewSealKey()), fileTestAPIHash, port, upPort, upPort)
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	p := startCaddy(t, bin, dir, caddyfile, base)
	client := &http.Client{Timeout: 5 * time.Second}
	var (
		mu        sync.Mutex
		created   []string            // answered 200
		touched   = map[string]bool{} // a delete or status report was sent (answered or not)
		deleted   []string            // answered 2xx
		failed    []string            // status report "failed" answered 200
		acked     atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		killAfter = int64(400)
	)
	send := func(method, u, body string) (int, string, error) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.SetBasicAuth("admin", "admin-password")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := send(http.MethodPost, base+handlers.OAMBase+"/session",
					fmt.Sprintf(`{"userId":"crash-%d-%d"}`, w, i))
				if err != nil {
					return // the server is gone
				}
				if code != http.StatusOK {
					continue
				}
				var out struct {
					SessionID string `json:"sessionId"`
				}
				if json.Unmarshal([]byte(body), &out) != nil || out.SessionID == "" {
					continue
				}
				mu.Lock()
				created = append(created, out.SessionID)
				mu.Unlock()
				acked.Add(1)
				if i%3 == 1 {
					// A status update through the risk-analyzer family:
					// authenticationStatus 2 (wrong_password) → failed.
					mu.Lock()
					touched[out.SessionID] = true
					mu.Unlock()
					code, _, err = send(http.MethodPut, base+handlers.RiskBase+"/updatesessionsecurely",
						`{"requestId":"`+out.SessionID+`","authenticationStatus":2,"clientType":1}`)
					if err != nil {
						return
					}
					if code == http.StatusOK {
						mu.Lock()
						failed = append(failed, out.SessionID)
						mu.Unlock()
						acked.Add(1)
					}
					continue
				}
				if i%3 != 0 {
					continue
				}
				mu.Lock()
				touched[out.SessionID] = true
				mu.Unlock()
				code, _, err = send(http.MethodDelete, base+handlers.OAMBase+"/session?sessionId="+out.SessionID, "")
				if err != nil {
					return
				}
				if code/100 == 2 {
					mu.Lock()
					deleted = append(deleted, out.SessionID)
					mu.Unlock()
					acked.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for acked.Load() < killAfter && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.kill() // SIGKILL mid-load
	close(stop)
	wg.Wait()
	if acked.Load() < killAfter {
		t.Fatalf("only %d writes acknowledged before the kill:\n%s", acked.Load(), p.out)
	}
	t.Logf("killed bin/caddy after %d acknowledged writes (%d creations, %d status updates, %d deletions)",
		acked.Load(), len(created), len(failed), len(deleted))

	p2 := startCaddy(t, bin, dir, caddyfile, base)
	if strings.Contains(p2.out.String(), `"level":"error"`) {
		t.Fatalf("errors on restart:\n%s", p2.out)
	}
	check := func(id string) (apiCode, gateCode int) {
		code, _, err := send(http.MethodGet, base+handlers.OAMBase+"/session/"+id, "")
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/app", nil)
		req.AddCookie(&http.Cookie{Name: "authsession", Value: id})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return code, resp.StatusCode
	}
	kept := 0
	for _, id := range created {
		if touched[id] {
			continue // deletion sent, maybe not answered: either state is right
		}
		if api, gate := check(id); api != http.StatusOK || gate != http.StatusOK {
			t.Fatalf("acknowledged session lost in the crash: get %d, gate %d\n%s", api, gate, p2.out)
		}
		kept++
	}
	for _, id := range deleted {
		if api, gate := check(id); api != http.StatusNotFound || gate != http.StatusUnauthorized {
			t.Fatalf("acknowledged deletion lost in the crash: get %d, gate %d", api, gate)
		}
	}
	for _, id := range failed {
		if api, gate := check(id); api != http.StatusOK || gate != http.StatusUnauthorized {
			t.Fatalf("acknowledged status update lost in the crash: get %d, gate %d", api, gate)
		}
		code, body, err := send(http.MethodGet, base+handlers.RiskBase+"/"+id, "")
		if err != nil || code != http.StatusOK || !strings.Contains(body, `"sessionStatus":"failed","authenticationStatus":2`) {
			t.Fatalf("status after restart: %d %s %v", code, body, err)
		}
	}
	t.Logf("after restart: %d acknowledged sessions present, %d status updates and %d deletions hold", kept, len(failed), len(deleted))
}
