package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// Regression guards for peers' advisories against the gate, through the
// in-process Caddy.

// headersUpstream answers with the path and every request header it got.
func headersUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// scopedGate starts a site where only /admin* is gated and the rest is
// public, in front of headersUpstream.
func scopedGate(t *testing.T) string {
	t.Helper()
	up := headersUpstream(t)
	_, port := newTester(t, `{
	{ADMIN}
	http_port {PORT}
	auto_https off
	authsession {
		cookie {
			insecure
		}
		api_user `+testAPIUser+` `+testAPIHash+`
	}
}
http://localhost:{PORT} {
	authsession api
	route /admin* {
		authsession gate {
			upstream_header X-Auth-User login
			upstream_header X-Auth-Group group
		}
	}
	reverse_proxy `+strings.TrimPrefix(up.URL, "http://")+`
}
`)
	return fmt.Sprintf("http://localhost:%d", port)
}

// rawGet sends request (a full HTTP/1.1 request head, CRLF line ends,
// without the final empty line) over a fresh TCP connection and returns
// the status and body.
func rawGet(t *testing.T, base, head string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", head, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// upstreamSaw decodes a headersUpstream answer.
func upstreamSaw(t *testing.T, body string) (path string, hdr map[string][]string) {
	t.Helper()
	var m struct {
		Path    string              `json:"path"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not an upstream answer: %v: %q", err, body)
	}
	return m.Path, m.Headers
}

// Rewrite headers some proxies honour, and the user agents of health
// checkers, do not change the gate's decision.
func TestAdvisoryForgedRewriteHeadersAndProbes(t *testing.T) {
	base := scopedGate(t)
	forged := []map[string]string{
		{"X-Forwarded-Uri": "/public"},
		{"X-Original-URL": "/public"},
		{"X-Original-URI": "/public"},
		{"X-Rewrite-URL": "/public"},
		{"X-Forwarded-Prefix": "/public"},
		{"X-Forwarded-Path": "/public"},
		{"User-Agent": "kube-probe/1.29"},
		{"User-Agent": "ELB-HealthChecker/2.0"},
		{"User-Agent": "GoogleHC/1.0"},
		{"User-Agent": "Consul Health Check"},
		{"X-Original-URL": "/healthz", "User-Agent": "kube-probe/1.29"},
	}
	for _, hdr := range forged {
		code, _, body := call(t, "GET", base+"/admin/panel", hdr, "")
		if code == http.StatusOK || strings.Contains(body, `"path"`) {
			t.Errorf("%v: the gate let a request without a session through: %d %s", hdr, code, body)
		}
	}
	// With a session the gate passes, and the upstream sees the real path
	// and the session's identity.
	s := createSession(t, base, `{"userId":"bob"}`)
	hdr := map[string]string{"Cookie": "authsession=" + s["sessionId"].(string), "X-Original-URL": "/other", "User-Agent": "kube-probe/1.29"}
	code, _, body := call(t, "GET", base+"/admin/panel", hdr, "")
	path, got := upstreamSaw(t, body)
	if code != http.StatusOK || path != "/admin/panel" || strings.Join(got["X-Auth-User"], ",") != "bob" {
		t.Fatalf("with a session: %d %s %v", code, path, got)
	}
}

// A fragment (encoded or raw), ';' parameters, case, dot segments and
// encodings do not take /admin out of the gate's matcher.
func TestAdvisoryScopedGatePathTricks(t *testing.T) {
	base := scopedGate(t)
	u, _ := url.Parse(base)
	// The public part is public.
	if code, body := rawGet(t, base, "GET /public HTTP/1.1\r\nHost: "+u.Host+"\r\n"); code != http.StatusOK {
		t.Fatalf("public path: %d %s", code, body)
	}
	for _, target := range []string{
		"/admin", "/admin/", "/admin%23", "/admin%23x", "/admin/%23/x", "/admin#x", "/admin/#x",
		"/admin;x=1", "/admin/;x=1", "/admin;/x", "/Admin", "/ADMIN/x", "/%61dmin", "/admin%2fx",
		"//admin", "/./admin", "/public/../admin", "/public/%2e%2e/admin", "/admin%00",
	} {
		code, body := rawGet(t, base, "GET "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\n")
		if code == http.StatusOK || strings.Contains(body, `"path"`) {
			t.Errorf("%s reached the upstream without a session: %d %s", target, code, body)
		}
	}
}

// Client-sent identity headers never reach the upstream, whatever their
// spelling: '_' for '-', another letter case, duplicates, or folded
// (obs-fold continuation lines) over a raw connection.
func TestAdvisoryIdentityHeaderVariants(t *testing.T) {
	base := scopedGate(t)
	u, _ := url.Parse(base)
	s := createSession(t, base, `{"userId":"bob"}`)
	cookie := "Cookie: authsession=" + s["sessionId"].(string) + "\r\n"
	for _, extra := range []string{
		"X-Auth_User: admin\r\nX-Auth_Group: Administrators\r\n",
		"x-auth-user: admin\r\nx-AUTH-group: Administrators\r\n",
		"X-AUTH_USER: admin\r\nx_auth_group: Administrators\r\n",
		"X-Auth-User: admin\r\nX-Auth-User: root\r\nX-Auth-Group: Administrators\r\nX-Auth-Group: wheel\r\n",
		"X-Auth-User:\r\n admin\r\nX-Auth-Group:\r\n\tAdministrators\r\n",
		"X-Other: x\r\n X-Auth-User: admin\r\n",
		"X-Auth-User: bob\r\n ,admin\r\n",
	} {
		code, body := rawGet(t, base, "GET /admin/x HTTP/1.1\r\nHost: "+u.Host+"\r\n"+cookie+extra)
		if code == http.StatusBadRequest {
			continue // refused outright: fine
		}
		if code != http.StatusOK {
			t.Errorf("%q: %d %s", extra, code, body)
			continue
		}
		_, got := upstreamSaw(t, body)
		for name, vals := range got {
			n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
			switch {
			case n == "x-auth-user" && (name != "X-Auth-User" || strings.Join(vals, ",") != "bob"):
				t.Errorf("%q: upstream got %s: %q", extra, name, vals)
			case n == "x-auth-group":
				t.Errorf("%q: upstream got %s: %q (the session has no group)", extra, name, vals)
			}
		}
		// A folded line stays part of the header it continues (X-Other
		// here): it never becomes a header of its own.
		if _, ok := got["X-Other"]; ok && strings.Join(got["X-Auth-User"], ",") != "bob" {
			t.Errorf("%q: a folded line became an identity header: %v", extra, got)
		}
	}
}

// require_group compares groups exactly: a group that differs only in
// letter case or in Unicode normal form (NFC against NFD) does not pass.
func TestAdvisoryRequireGroupExact(t *testing.T) {
	const (
		nfc = "\u00c5ngstr\u00f6m"   // Å and ö precomposed
		nfd = "A\u030angstro\u0308m" // A + ring, o + diaeresis
	)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	hash := "$2a$10$6kNVGTRg2YrzJFmd.mn0h.bnuFpHxHaZmwJBdppfgTbMSjvTK9XGq" // demo-password
	if err := os.WriteFile(users, []byte(`{"users":[
		{"id":"u1","login":"staffer","group":"Staff","password_hash":"`+hash+`","totp_secret":"`+itTOTPSecret+`","factors":["ChallengeOMATOTP"]},
		{"id":"u2","login":"composed","group":"`+nfc+`","password_hash":"`+hash+`","totp_secret":"`+itTOTPSecret+`","factors":["ChallengeOMATOTP"]},
		{"id":"u3","login":"decomposed","group":"`+nfd+`","password_hash":"`+hash+`","totp_secret":"`+itTOTPSecret+`","factors":["ChallengeOMATOTP"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	gate := func(path, group string) string {
		return fmt.Sprintf("\troute /%s* {\n\t\tauthsession gate {\n\t\t\trequire_group %q\n\t\t}\n\t\trespond \"in %s\"\n\t}\n", path, group, path)
	}
	_, port := newTester(t, fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	authsession {
		users_file %s
		cookie {
			insecure
		}
	}
}
http://localhost:{PORT} {
	authsession portal
%s%s%s%s%s	respond "public"
}
`, users, gate("exact", "Staff"), gate("lower", "staff"), gate("upper", "STAFF"), gate("nfc", nfc), gate("nfd", nfd)))
	base := fmt.Sprintf("http://localhost:%d", port)

	signIn := func(login string) *http.Client {
		t.Helper()
		br := newFormBrowser(t, base)
		do := func(method, path string, form url.Values) int { return br.do(method, path, form).StatusCode }
		csrf := br.csrf
		do("GET", "/auth/login", nil)
		if code := do("POST", "/auth/login", url.Values{"login": {login}, "password": {"demo-password"}, "csrf": {csrf()}}); code != http.StatusSeeOther {
			t.Fatalf("%s: password step %d\n%s", login, code, br.page)
		}
		do("GET", "/auth/otp?factor=totp", nil)
		code, err := state.TOTPPolicy{}.Defaults().Code(itTOTPSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st := do("POST", "/auth/otp", url.Values{"factor": {"totp"}, "code": {code}, "csrf": {csrf()}}); st != http.StatusSeeOther {
			t.Fatalf("%s: code step %d\n%s", login, st, br.page)
		}
		return br.c
	}
	status := func(c *http.Client, path string) int {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		login string
		pass  []string
		deny  []string
	}{
		{"staffer", []string{"/exact"}, []string{"/lower", "/upper", "/nfc", "/nfd"}},
		{"composed", []string{"/nfc"}, []string{"/nfd", "/exact"}},
		{"decomposed", []string{"/nfd"}, []string{"/nfc", "/exact"}},
	} {
		c := signIn(tt.login)
		for _, p := range tt.pass {
			if got := status(c, p); got != http.StatusOK {
				t.Errorf("%s on %s: %d, want 200", tt.login, p, got)
			}
		}
		for _, p := range tt.deny {
			if got := status(c, p); got == http.StatusOK {
				t.Errorf("%s on %s: 200, want a refusal", tt.login, p)
			}
		}
	}
}
