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

const fileTestAPIHash = "$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW" // admin-password

// fileStoreConfig is a Caddyfile serving the API and a gated upstream with
// the given store line.
func fileStoreConfig(store, upstream string) string {
	return `{
	{ADMIN}
	http_port {PORT}
	auto_https off
	authsession {
		` + store + `
		cookie {
			insecure
		}
		api_user admin ` + fileTestAPIHash + `
	}
}
http://localhost:{PORT} {
	authsession api
	authsession gate
	reverse_proxy ` + upstream + `
}
`
}

// oamCall sends an authenticated OAM API request and returns status and body.
func oamCall(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "admin-password")
	req.Header.Set("Content-Type", "application/json")
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// gateStatus asks the gate for a protected page with the session cookie.
func gateStatus(t *testing.T, base, id string) int {
	t.Helper()
	return cookieStatus(t, base+"/protected", "authsession", id)
}

// cookieStatus returns the status of a GET of url sent with the cookie
// name=value, as an API client (no redirect to follow).
func cookieStatus(t *testing.T, url, name, value string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.AddCookie(&http.Cookie{Name: name, Value: value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestFileStoreRestart creates sessions through the OAM API with a file
// store, stops using the file (a config with the memory store closes it),
// starts again on the same file, and checks every session is back and the
// gate decides as before.
func TestFileStoreRestart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "upstream")
	}))
	defer up.Close()
	upstream := strings.TrimPrefix(up.URL, "http://")
	path := filepath.Join(t.TempDir(), "sessions.db")
	fileCfg := fileStoreConfig("store file "+path+" {\n\t\t\tflush_interval 1s\n\t\t}", upstream)

	tester, port := newTester(t, fileCfg)
	base := fmt.Sprintf("http://localhost:%d", port)
	type created struct{ id, user string }
	var sessions []created
	for i := range 5 {
		user := fmt.Sprintf("user%d", i%2)
		code, body := oamCall(t, http.MethodPost, base+handlers.OAMBase+"/session",
			`{"userId":"`+user+`","clientIp":"192.0.2.9","userAttributes":{"mail":{"attrName":"mail","attrValue":"`+user+`@example.com"}}}`)
		if code != http.StatusOK {
			t.Fatalf("create: %d %s", code, body)
		}
		var out struct {
			SessionID string `json:"sessionId"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.SessionID == "" {
			t.Fatalf("create answer %s: %v", body, err)
		}
		sessions = append(sessions, created{out.SessionID, user})
	}
	// One session is deleted before the restart: it must stay deleted.
	deleted := sessions[4]
	sessions = sessions[:4]
	if code, body := oamCall(t, http.MethodDelete, base+handlers.OAMBase+"/session?sessionId="+deleted.id, ""); code/100 != 2 {
		t.Fatalf("delete: %d %s", code, body)
	}
	before := map[string]string{}
	for _, s := range sessions {
		if got := gateStatus(t, base, s.id); got != http.StatusOK {
			t.Fatalf("gate before restart: %d", got)
		}
		_, body := oamCall(t, http.MethodGet, base+handlers.OAMBase+"/session/"+s.id, "")
		before[s.id] = body
	}

	// "Stop": a config without the file store releases and closes it.
	tester.InitServer(expand(fileStoreConfig("store memory", upstream), port), "caddyfile")
	if got := gateStatus(t, base, sessions[0].id); got != http.StatusUnauthorized {
		t.Fatalf("gate on the memory store: %d, want 401", got)
	}
	// "Start again" on the same file.
	tester.InitServer(expand(fileCfg, port), "caddyfile")
	for _, s := range sessions {
		if got := gateStatus(t, base, s.id); got != http.StatusOK {
			t.Fatalf("gate after restart: %d, want 200", got)
		}
		code, body := oamCall(t, http.MethodGet, base+handlers.OAMBase+"/session/"+s.id, "")
		if code != http.StatusOK {
			t.Fatalf("get after restart: %d %s", code, body)
		}
		if stripAccess(body) != stripAccess(before[s.id]) {
			t.Fatalf("session changed across the restart:\n before %s\n after  %s", before[s.id], body)
		}
	}
	if got := gateStatus(t, base, deleted.id); got != http.StatusUnauthorized {
		t.Fatalf("deleted session after restart: gate %d, want 401", got)
	}
	code, body := oamCall(t, http.MethodPost, base+handlers.OAMBase+"/sessions", `{"userId":"user0"}`)
	if code != http.StatusOK || strings.Count(body, `"sessionId"`) != 2 {
		t.Fatalf("search by user after restart: %d %s", code, body)
	}

	// A reload with the same file keeps the open store (a second open
	// would find the file locked) and every session.
	tester.InitServer(expand(strings.Replace(fileCfg, "flush_interval 1s", "flush_interval 2s", 1), port), "caddyfile")
	for _, s := range sessions {
		if got := gateStatus(t, base, s.id); got != http.StatusOK {
			t.Fatalf("gate after reload: %d, want 200", got)
		}
	}
}

// stripAccess drops lastAccessTime, which the gate's hits may move.
func stripAccess(body string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return body
	}
	delete(m, "lastAccessTime")
	b, _ := json.Marshal(m)
	return string(b)
}
