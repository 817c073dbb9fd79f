package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/testkit"
)

// testAdminPort is the admin port of the in-process Caddy that caddytest
// starts once per test binary: a free loopback port, so that several test
// binaries (or developers) never collide on caddytest's fixed default.
var testAdminPort = sync.OnceValue(func() int { return freePort() })

// freePort returns a TCP port free on 127.0.0.1 right now.
var freePort = testkit.FreePort

// newTester loads a Caddyfile into the in-process Caddy and returns a
// tester for it. In caddyfile, "{ADMIN}" stands for the admin address line
// and "{PORT}" for a fresh free port (the same one throughout the file);
// the port is returned too.
func newTester(t *testing.T, caddyfile string) (*caddytest.Tester, int) {
	t.Helper()
	port := freePort()
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort: testAdminPort(),
		// Generous: under -race on a loaded 2-core CI machine a config load
		// (bcrypt work at provision) takes seconds.
		LoadRequestTimeout: time.Minute,
		TestRequestTimeout: 30 * time.Second,
	})
	tester.InitServer(expand(caddyfile, port), "caddyfile")
	// Every API exchange of the test is checked against docs/openapi.
	tester.Client.Transport = contract.New(t).Transport(tester.Client.Transport)
	return tester, port
}

// contractClient is a client whose API exchanges are checked against
// docs/openapi for the rest of t.
func contractClient(t *testing.T) *http.Client {
	t.Helper()
	return &http.Client{Transport: contract.New(t).Transport(nil)}
}

// expand substitutes "{ADMIN}" and "{PORT}" in a test Caddyfile.
func expand(caddyfile string, port int) string {
	cfg := strings.ReplaceAll(caddyfile, "{ADMIN}", fmt.Sprintf("admin localhost:%d", testAdminPort()))
	return strings.ReplaceAll(cfg, "{PORT}", fmt.Sprint(port))
}

// exampleConfig returns the repository's Caddyfile.example made ready for
// newTester: the admin endpoint, the site's port and the demo app's port
// moved to free ones ({ADMIN}, {PORT}, and the returned upstream port), and
// the users file found from the test's directory. It fails the test when
// the example no longer has one of the lines it rewrites.
func exampleConfig(t *testing.T) (cfg string, upstream int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	upstream = freePort()
	cfg = string(raw)
	for old, repl := range map[string]string{
		"admin localhost:2019":          "{ADMIN}",
		"http://localhost:8080":         "http://localhost:{PORT}",
		"127.0.0.1:8081":                fmt.Sprintf("127.0.0.1:%d", upstream),
		"http://:8081":                  fmt.Sprintf("http://:%d", upstream),
		"users_file users.example.json": "users_file ../../users.example.json",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("Caddyfile.example no longer contains %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	return cfg, upstream
}

// formBrowser is a browser on the portal's pages: it keeps cookies, follows
// no redirect, and keeps the last page it read.
type formBrowser struct {
	t    *testing.T
	base string
	jar  *cookiejar.Jar
	c    *http.Client
	page string
}

func newFormBrowser(t *testing.T, base string) *formBrowser {
	jar, _ := cookiejar.New(nil)
	return &formBrowser{t: t, base: base, jar: jar, c: &http.Client{
		Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a GET, or a form POST when form is not nil, as a browser does,
// and reads the page.
func (b *formBrowser) do(method, path string, form url.Values) *http.Response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.page = string(page)
	return resp
}

// csrf is the CSRF token of the last page's forms.
func (b *formBrowser) csrf() string {
	b.t.Helper()
	m := itCSRF.FindStringSubmatch(b.page)
	if m == nil {
		b.t.Fatalf("no csrf token:\n%s", b.page)
	}
	return m[1]
}
