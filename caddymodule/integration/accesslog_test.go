package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// With the access log of Caddyfile.example on, no session id that a
// request carries in its URI reaches the log (issue #14, finding 7).
func TestAccessLogRedactsSessionIDs(t *testing.T) {
	cfg, _ := exampleConfig(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	if !strings.Contains(cfg, "\tlog {\n") {
		t.Fatal("Caddyfile.example has no log block")
	}
	cfg = strings.Replace(cfg, "\tlog {\n", "\tlog {\n\t\toutput file "+logFile+"\n", 1)
	tester, port := newTester(t, cfg)
	base := "http://localhost:" + strconv.Itoa(port)

	id := state.NewID()
	send := func(method, path, body string, hdr ...string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	basic := []string{"Authorization", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=", "Content-Type", "application/json"}
	send("PUT", "/sessions/"+id, `{"userId":"demo","passedLoginOTP":false}`, "Authorization", "Bearer demo-token", "Content-Type", "application/json")
	send("GET", handlers.OAMBase+"/session/"+id, "", basic...)
	send("GET", handlers.RiskBase+"/"+id, "", basic...)
	send("DELETE", handlers.OAMBase+"/session?sessionId="+id, "", basic...)
	send("GET", "/app", "", "Cookie", "authsession="+id, "Authorization", "Bearer "+id)

	var log string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(logFile)
		log = string(b)
		if strings.Count(log, "\n") >= 5 {
			break
		}
	}
	if strings.Count(log, "\n") < 5 {
		t.Fatalf("the access log has %d lines, want 5:\n%s", strings.Count(log, "\n"), log)
	}
	if strings.Contains(log, id) {
		t.Errorf("the access log holds the session id:\n%s", log)
	}
	if !strings.Contains(log, "REDACTED") {
		t.Errorf("the access log shows no redaction:\n%s", log)
	}
}
