package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

var (
	itCSRF    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	itLogCode = regexp.MustCompile(`"otp":"([0-9]+)"`)
)

// TestPortalThroughCaddy signs in through Caddy with the log delivery:
// login, password, the code read from Caddy's log, then the protected
// app; the pre-login id is refused by the gate afterwards; sign-out ends
// it. A custom template directory replaces the sign-in page.
func TestPortalThroughCaddy(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	hash := "$2a$10$6kNVGTRg2YrzJFmd.mn0h.bnuFpHxHaZmwJBdppfgTbMSjvTK9XGq" // demo-password
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"demo","login":"demo","mail":"demo@example.com",
		"password_hash":"`+hash+`","factors":["ChallengeEmail"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pages := filepath.Join(dir, "pages")
	os.Mkdir(pages, 0o700)
	os.WriteFile(filepath.Join(pages, "login.html"), []byte(`{{define "content"}}<h1>Custom page of {{.Title}}</h1>
<form method="post" action="{{.Prefix}}/login"><input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .Redirect}}<input type="hidden" name="redirect" value="{{.Redirect}}">{{end}}
<input name="login"><input type="password" name="password"><button>Go</button></form>{{end}}`), 0o600)
	logFile := filepath.Join(dir, "caddy.log")
	_, port := newTester(t, fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	log {
		output file %s
		format json
	}
	authsession {
		users_file %s
		cookie {
			name sid
			insecure
		}
		otp {
			log_delivery
		}
	}
}
http://localhost:{PORT} {
	authsession portal {
		templates %s
		title "Test portal"
	}
	authsession gate {
		upstream_header X-Auth-User login
	}
	respond "hello {http.auth.user.login}"
}
`, logFile, users, pages))
	base := fmt.Sprintf("http://localhost:%d", port)
	br := newFormBrowser(t, base)
	do := br.do
	expect := func(resp *http.Response, status int, loc string) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("Location") != loc {
			t.Fatalf("got %d %q, want %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), status, loc, br.page)
		}
	}
	csrf := br.csrf
	sid := func() string {
		u, _ := url.Parse(base)
		for _, ck := range br.jar.Cookies(u) {
			if ck.Name == "sid" {
				return ck.Value
			}
		}
		return ""
	}

	expect(do("GET", "/app", nil), http.StatusFound, "/auth/login?redirect=%2Fapp")
	expect(do("GET", "/auth/login?redirect=%2Fapp", nil), http.StatusOK, "")
	if !strings.Contains(br.page, "<h1>Custom page of Test portal</h1>") {
		t.Fatalf("template directory not used:\n%s", br.page)
	}
	expect(do("POST", "/auth/login", url.Values{
		"login": {"demo"}, "password": {"demo-password"},
		"redirect": {"/app"}, "csrf": {csrf()},
	}), http.StatusSeeOther, "/auth/otp?factor=email&redirect=%2Fapp")
	pre := sid()
	expect(do("GET", "/auth/otp?factor=email&redirect=%2Fapp", nil), http.StatusOK, "")
	var code string
	for deadline := time.Now().Add(10 * time.Second); code == "" && time.Now().Before(deadline); {
		b, _ := os.ReadFile(logFile)
		if m := itLogCode.FindAllStringSubmatch(string(b), -1); m != nil {
			code = m[len(m)-1][1]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code == "" {
		t.Fatal("no code in Caddy's log")
	}
	expect(do("POST", "/auth/otp", url.Values{
		"factor": {"email"}, "code": {code}, "redirect": {"/app"},
		"csrf": {csrf()},
	}), http.StatusSeeOther, "/app")
	if sid() == pre || sid() == "" {
		t.Fatal("session id not rotated")
	}
	expect(do("GET", "/app", nil), http.StatusOK, "")
	if br.page != "hello demo" {
		t.Fatalf("app said %q", br.page)
	}
	// The pre-login id is refused by the gate.
	if st := cookieStatus(t, base+"/app", "sid", pre); st != http.StatusUnauthorized {
		t.Fatalf("pre-login id: %d, want 401", st)
	}
	if state.ValidateID(pre) != nil {
		t.Fatalf("pre-login id %q malformed", pre)
	}
	expect(do("GET", "/auth/logout", nil), http.StatusOK, "")
	expect(do("POST", "/auth/logout", url.Values{"csrf": {csrf()}}), http.StatusSeeOther, "/auth/login?signed_out=1")
	expect(do("GET", "/app", nil), http.StatusFound, "/auth/login?redirect=%2Fapp")
}
