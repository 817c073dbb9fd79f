package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Demo API credentials: admin / admin-password (bcrypt cost 10).
const (
	testAPIUser = "admin"
	testAPIPass = "admin-password"
	testAPIHash = "$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW"
	oamBase     = "/oam/services/rest/access/api/v1"
)

// echoUpstream is a protected app that answers with the identity headers it
// received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path":    r.URL.Path,
			"user":    r.Header.Get("X-Auth-User"),
			"group":   r.Header.Get("X-Auth-Group"),
			"user_id": r.Header.Get("X-User-Id"),
			"status":  r.Header.Get("X-Session-Status"),
			"mail":    r.Header.Get("X-Mail"),
			"login":   r.Header.Get("X-Login"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

const gatedConfig = `{
	{ADMIN}
	http_port {PORT}
	auto_https off
	authsession {
		cookie {
			insecure
		}
		api_user ` + testAPIUser + ` ` + testAPIHash + `
	}
}
http://localhost:{PORT} {
	authsession api
	authsession gate {
		upstream_header X-Auth-User login
		upstream_header X-Auth-Group group
	}
	reverse_proxy UPSTREAM {
		header_up X-User-Id {http.auth.user.id}
		header_up X-Session-Status {http.authsession.status}
		header_up X-Mail {http.auth.user.mail}
		header_up X-Login {http.auth.user.login}
	}
}
`

func gated(t *testing.T, extra string) (*caddytest.Tester, string) {
	t.Helper()
	up := echoUpstream(t)
	cfg := strings.Replace(gatedConfig, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"), 1)
	cfg = strings.Replace(cfg, "upstream_header X-Auth-Group group", "upstream_header X-Auth-Group group\n"+extra, 1)
	tester, port := newTester(t, cfg)
	return tester, fmt.Sprintf("http://localhost:%d", port)
}

// call sends a request and returns the status, headers and body.
func call(t *testing.T, method, u string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func apiAuth() map[string]string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(testAPIUser, testAPIPass)
	return map[string]string{"Authorization": req.Header.Get("Authorization"), "Content-Type": "application/json"}
}

// createSession makes a session through the OAM API and returns its answer.
func createSession(t *testing.T, base, body string) map[string]any {
	t.Helper()
	code, _, out := call(t, "POST", base+oamBase+"/session", apiAuth(), body)
	if code != http.StatusOK {
		t.Fatalf("create: %d %s", code, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("create answer: %v: %s", err, out)
	}
	return m
}

func decode(t *testing.T, body string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	return m
}

func TestIntegrationWalkCreatePassDeleteRefuse(t *testing.T) {
	_, base := gated(t, "")
	s := createSession(t, base, `{"userId":"alice","clientIp":"203.0.113.5","userAttributes":{"mail":{"attrName":"mail","attrValue":"alice@example.com"}}}`)
	id, _ := s["sessionId"].(string)
	if len(id) != 43 || s["userId"] != "alice" || s["idStoreName"] != "UserIdentityStore1" || s["isImpersonating"] != false {
		t.Fatalf("create answer: %v", s)
	}
	cookie := map[string]string{"Cookie": "authsession=" + id}

	code, _, body := call(t, "GET", base+"/app", cookie, "")
	if code != http.StatusOK {
		t.Fatalf("gate with cookie: %d %s", code, body)
	}
	got := decode(t, body)
	if got["user"] != "alice" || got["user_id"] != "alice" || got["status"] != "authenticated" || got["path"] != "/app" ||
		got["mail"] != "alice@example.com" || got["login"] != "alice" {
		t.Fatalf("upstream saw %v", got)
	}

	// The same id works as a bearer token only when session_header is set.
	code, _, _ = call(t, "GET", base+"/app", map[string]string{"Authorization": "Bearer " + id}, "")
	if code != http.StatusUnauthorized {
		t.Fatalf("bearer without session_header: %d", code)
	}

	code, _, body = call(t, "GET", base+oamBase+"/session/"+url.PathEscape(id), apiAuth(), "")
	if code != http.StatusOK || !strings.Contains(body, `"userId":"alice"`) {
		t.Fatalf("get: %d %s", code, body)
	}

	code, _, body = call(t, "DELETE", base+oamBase+"/session?sessionId="+url.QueryEscape(id), apiAuth(), "")
	if code != http.StatusOK || !strings.HasPrefix(body, `[{"userId":"alice"`) {
		t.Fatalf("delete: %d %s", code, body)
	}

	code, hdr, body := call(t, "GET", base+"/app", cookie, "")
	if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" || !strings.Contains(body, `"error":"unauthorized"`) {
		t.Fatalf("gate after delete: %d %v %s", code, hdr, body)
	}
	code, hdr, _ = call(t, "GET", base+"/app?x=1", map[string]string{"Cookie": "authsession=" + id, "Accept": "text/html"}, "")
	if code != http.StatusFound || hdr.Get("Location") != "/auth/login?redirect=%2Fapp%3Fx%3D1" {
		t.Fatalf("browser after delete: %d %q", code, hdr.Get("Location"))
	}
}

func TestIntegrationForgedIdentityHeaders(t *testing.T) {
	_, base := gated(t, "")
	s := createSession(t, base, `{"userId":"bob"}`)
	forged := map[string]string{
		"Cookie":       "authsession=" + s["sessionId"].(string),
		"X-Auth-User":  "admin",
		"X-Auth-Group": "Administrators",
	}
	code, _, body := call(t, "GET", base+"/", forged, "")
	got := decode(t, body)
	if code != http.StatusOK || got["user"] != "bob" || got["group"] != "" {
		t.Fatalf("forged headers reached upstream: %d %v", code, got)
	}
	// Without a session the request never reaches the upstream at all.
	delete(forged, "Cookie")
	code, _, body = call(t, "GET", base+"/", forged, "")
	if code != http.StatusUnauthorized || strings.Contains(body, "admin") {
		t.Fatalf("forged headers without session: %d %s", code, body)
	}
}

func TestIntegrationSessionHeaderAndGroups(t *testing.T) {
	_, base := gated(t, "session_header Authorization Bearer\nrequire_group staff")
	s := createSession(t, base, `{"userId":"carol"}`)
	code, _, body := call(t, "GET", base+"/", map[string]string{"Authorization": "Bearer " + s["sessionId"].(string)}, "")
	// OAM sessions carry no group: require_group refuses them with 403.
	if code != http.StatusForbidden || !strings.Contains(body, `"error":"forbidden"`) {
		t.Fatalf("require_group: %d %s", code, body)
	}
}

func TestIntegrationReloadKeepsSessions(t *testing.T) {
	up := echoUpstream(t)
	cfg := strings.Replace(gatedConfig, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"), 1)
	tester, port := newTester(t, cfg)
	base := fmt.Sprintf("http://localhost:%d", port)
	s := createSession(t, base, `{"userId":"dave"}`)
	cookie := map[string]string{"Cookie": "authsession=" + s["sessionId"].(string)}
	if code, _, body := call(t, "GET", base+"/", cookie, ""); code != http.StatusOK {
		t.Fatalf("before reload: %d %s", code, body)
	}

	// A changed config (other header names, new lifetime): same store.
	changed := strings.Replace(cfg, "upstream_header X-Auth-User login", "upstream_header X-Auth-User user_id", 1)
	changed = strings.Replace(changed, "authsession {", "authsession {\n\t\tsession_lifetime 2h", 1)
	tester.InitServer(expand(changed, port), "caddyfile")

	code, _, body := call(t, "GET", base+"/", cookie, "")
	if code != http.StatusOK || decode(t, body)["user"] != "dave" {
		t.Fatalf("after reload: %d %s", code, body)
	}
	// The new lifetime applies to new sessions only.
	if exp := createSession(t, base, `{"userId":"erin"}`); exp["expiryTime"] == s["expiryTime"] {
		t.Fatalf("new lifetime not applied: %v", exp["expiryTime"])
	}
}

func TestIntegrationOAMErrors(t *testing.T) {
	_, base := gated(t, "")
	url := base + oamBase
	bad := map[string]string{"Authorization": "Basic YWRtaW46d3Jvbmc=", "Content-Type": "application/json"}
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		code               int
		msg, field         string
	}{
		{"bad credentials", "POST", "/session", bad, `{"userId":"x"}`, 401, "credentials", ""},
		{"no credentials", "GET", "/session/abc", nil, ``, 401, "credentials", ""},
		{"missing userId", "POST", "/session", apiAuth(), `{"clientIp":"1.2.3.4"}`, 400, "userId is required", "userId"},
		{"malformed JSON", "POST", "/session", apiAuth(), `{"userId":`, 400, "malformed JSON", ""},
		{"wrong type", "POST", "/session", apiAuth(), `{"userId":["x"]}`, 400, "must be a string", "userId"},
		{"wrong bool", "POST", "/session", apiAuth(), `{"userId":"x","isImpersonating":"maybe"}`, 400, "must be a boolean", "isImpersonating"},
		{"bad session id", "POST", "/session", apiAuth(), `{"userId":"x","sessionId":"short"}`, 400, "session id", "sessionId"},
		{"bad expiry", "POST", "/session", apiAuth(), `{"userId":"x","expiryTime":"tomorrow"}`, 400, "RFC 3339", "expiryTime"},
		{"too large", "POST", "/session", apiAuth(), `{"userId":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "64 KiB", ""},
		{"unknown session", "GET", "/session/6f1c1c0e-4b8a-4e8e-9a8e-7a1b2c3d4e5f", apiAuth(), ``, 404, "not found", "sessionId"},
		{"delete nothing named", "DELETE", "/session", apiAuth(), ``, 404, "required", "sessionId"},
		{"delete unknown user", "DELETE", "/session?userId=nobody-here", apiAuth(), ``, 404, "no session", ""},
		{"search none", "POST", "/sessions?userId=nobody-here", apiAuth(), ``, 404, "no session", ""},
		{"wrong method", "PUT", "/session", apiAuth(), `{}`, 405, "not allowed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := call(t, tc.method, url+tc.path, tc.hdr, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Fields  string `json:"fields"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tc.code ||
				!strings.Contains(e.Message, tc.msg) || e.Fields != tc.field {
				t.Fatalf("error body %s (want code %d, message with %q, fields %q)", body, tc.code, tc.msg, tc.field)
			}
			if hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", hdr.Get("Content-Type"))
			}
			if tc.code == 401 && hdr.Get("WWW-Authenticate") != `Basic realm="authsession"` {
				t.Fatalf("WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	// None of the rejected creations left a session behind.
	if code, _, body := call(t, "POST", url+"/sessions?userId=x", apiAuth(), ""); code != 404 {
		t.Fatalf("rejected input created sessions: %d %s", code, body)
	}
}
