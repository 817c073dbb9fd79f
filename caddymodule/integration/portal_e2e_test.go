package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authsession/caddy-authsession/state"
)

// browserPath returns Debian's Chromium, or skips loudly.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIPPED: no Chromium found (apt-get install -y chromium); the portal's browser test needs it")
	return ""
}

// artifactDir is where the browser test saves its screenshots:
// $AUTHSESSION_ARTIFACTS, else artifacts/portal-e2e in the repository.
func artifactDir(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("AUTHSESSION_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "portal-e2e")
	}
	dir, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// e2eDemo is bin/caddy serving a copy of Caddyfile.example (free ports,
// Caddy's log in a file) and a headless Chromium pointed at it.
type e2eDemo struct {
	t     *testing.T
	base  string
	log   string
	shots string
	n     int
	ctx   context.Context
}

func startE2EDemo(t *testing.T, name string) *e2eDemo {
	t.Helper()
	return startE2EDemoWith(t, name, nil)
}

// startE2EDemoWith is startE2EDemo with the configuration edited by edit
// (given the Caddyfile and the demo's base URL) before Caddy starts.
func startE2EDemoWith(t *testing.T, name string, edit func(cfg, base string) string) *e2eDemo {
	t.Helper()
	bin := caddyBin(t)
	chrome := browserPath(t)
	dir := t.TempDir()
	cfg, _ := exampleConfig(t)
	users, err := filepath.Abs(filepath.Join("..", "..", "users.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort()
	logFile := filepath.Join(dir, "caddy.log")
	cfg = strings.ReplaceAll(cfg, "{ADMIN}", "admin off")
	cfg = strings.ReplaceAll(cfg, "{PORT}", fmt.Sprint(port))
	cfg = strings.ReplaceAll(cfg, "users_file ../../users.example.json", "users_file "+users)
	if !strings.Contains(cfg, "\tauto_https off\n") {
		t.Fatal("Caddyfile.example no longer has 'auto_https off' in its global options")
	}
	cfg = strings.Replace(cfg, "\tauto_https off\n",
		"\tauto_https off\n\tlog {\n\t\toutput file "+logFile+"\n\t\tformat json\n\t}\n", 1)
	d := &e2eDemo{t: t, base: fmt.Sprintf("http://localhost:%d", port), log: logFile, shots: artifactDir(t, name)}
	if edit != nil {
		cfg = edit(cfg, d.base)
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startCaddy(t, bin, dir, caddyfile, d.base)

	// The flags of the issue: --headless --no-sandbox --disable-gpu
	// --disable-background-networking (plus a private profile and a size).
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(dir, "chrome")),
		chromedp.WindowSize(1000, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout (see chromedp.Run)
		t.Fatalf("starting %s: %v", chrome, err)
	}
	// Every later step is bounded.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	d.ctx = ctx
	return d
}

// run runs browser actions, failing the test with what the page shows.
func (d *e2eDemo) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	if err := chromedp.Do(d.ctx, actions...); err != nil {
		body, _ := chromedp.Run(d.ctx, chromedp.Text(chromedp.CSS("body")))
		d.t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
}

// get runs one action that returns a value.
func get[T any](d *e2eDemo, what string, a chromedp.Action[T]) T {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, a)
	if err != nil {
		d.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit runs actions that end with a click on a form button and waits for
// the page the browser is sent to (through any redirects), failing the test
// if it does not load or answers an error status.
func (d *e2eDemo) submit(what string, actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	resp, err := chromedp.RunResponse(d.ctx, actions...)
	if err != nil {
		body, _ := chromedp.Run(d.ctx, chromedp.Text(chromedp.CSS("body")))
		d.t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
	if resp.Status >= 400 {
		body, _ := chromedp.Run(d.ctx, chromedp.Text(chromedp.CSS("body")))
		d.t.Fatalf("%s: %s answered %d\npage: %s", what, resp.URL, resp.Status, body)
	}
}

// page checks that the browser is at path (and query, if given) and that
// the page's text contains want, then saves a screenshot named name.
func (d *e2eDemo) page(name, path, want string) {
	d.t.Helper()
	// The page may still be loading: wait (bounded) until the browser is
	// where it should be and the text is there. A query that meets a
	// document being replaced fails ("No node with given id found");
	// that is retried until the deadline, then reported.
	var loc, body string
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = chromedp.Do(d.ctx, chromedp.WaitReady(chromedp.CSS("body"))); err == nil {
			if loc, err = chromedp.Run(d.ctx, chromedp.Location()); err == nil {
				body, err = chromedp.Run(d.ctx, chromedp.Text(chromedp.CSS("body")))
			}
		}
		done := err == nil && strings.TrimPrefix(loc, d.base) == path && strings.Contains(body, want)
		if done || time.Now().After(deadline) || d.ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		d.t.Fatalf("%s: reading the page at %q: %v", name, loc, err)
	}
	png := get(d, "screenshot of "+name, chromedp.FullScreenshot(100))
	d.n++
	shot := filepath.Join(d.shots, fmt.Sprintf("%02d-%s.png", d.n, name))
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Logf("screenshot %s (%s)", shot, loc)
	if got := strings.TrimPrefix(loc, d.base); got != path {
		d.t.Fatalf("%s: the browser is at %q, want %q\npage: %s", name, got, path, body)
	}
	if !strings.Contains(body, want) {
		d.t.Fatalf("%s: the page does not say %q:\n%s", name, want, body)
	}
}

// sessionCookie returns the browser's session cookie for the demo site.
func (d *e2eDemo) sessionCookie() string {
	d.t.Helper()
	res, err := chromedp.Call(d.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.base + "/"}})
	if err != nil {
		d.t.Fatalf("reading cookies: %v", err)
	}
	var value string
	for _, c := range res.Cookies {
		if c.Name == "authsession" {
			value = c.Value
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
				d.t.Errorf("session cookie attributes: HttpOnly %v, SameSite %q", c.HTTPOnly, c.SameSite)
			}
		}
	}
	return value
}

// deliveredMsg is the message of the development delivery's log line
// (delivery.LogDeliverer).
const deliveredMsg = "otp delivered to the log (development delivery, unsafe)"

// mailedCodes returns, oldest first, the codes that the development
// delivery has written to Caddy's JSON log for the demo user's email.
func (d *e2eDemo) mailedCodes() []string {
	b, _ := os.ReadFile(d.log)
	var codes []string
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		var e struct {
			Msg     string `json:"msg"`
			Unsafe  bool   `json:"unsafe"`
			Channel string `json:"channel"`
			Login   string `json:"login"`
			OTP     string `json:"otp"`
		}
		if json.Unmarshal(line, &e) != nil || e.Msg != deliveredMsg {
			continue // another log line, or a line still being written
		}
		if !e.Unsafe || e.Channel != "email" || e.Login != "demo" || len(e.OTP) != 6 {
			d.t.Fatalf("unexpected delivery log line: %s", line)
		}
		codes = append(codes, e.OTP)
	}
	return codes
}

// nextCode waits (bounded) for a code after the first `seen` ones in
// Caddy's log and returns the newest.
func (d *e2eDemo) nextCode(seen int) string {
	d.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if codes := d.mailedCodes(); len(codes) > seen {
			return codes[len(codes)-1]
		}
	}
	d.t.Fatalf("no new code in Caddy's log %s", d.log)
	return ""
}

// signIn opens the protected app, is sent to the sign-in page, and gives
// the demo user's password; it returns the pre-login session id.
func (d *e2eDemo) signIn() string {
	d.t.Helper()
	d.run("opening the app", chromedp.Navigate(d.base+"/"))
	d.page("login", "/auth/login?redirect=%2F", "caddy-authsession demo")
	d.submit("signing in",
		chromedp.SendKeys(chromedp.CSS("#login"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-password"),
		chromedp.Click(chromedp.CSS("#signin")))
	d.page("factor-choice", "/auth/otp?redirect=%2F", "Confirm it is you")
	pre := d.sessionCookie()
	if state.ValidateID(pre) != nil {
		d.t.Fatalf("no pre-login session cookie after the password (%q)", pre)
	}
	return pre
}

// landed checks the protected demo app is shown and the session id is a
// new one.
func (d *e2eDemo) landed(pre string) {
	d.t.Helper()
	d.page("protected-app", "/", "Hello demo, this is the protected demo app.")
	if post := d.sessionCookie(); post == "" || post == pre {
		d.t.Fatalf("the session id was not rotated at sign-in (before %q, after %q)", pre, post)
	}
}

// signOut signs out and checks the app sends the browser to sign in again.
func (d *e2eDemo) signOut() {
	d.t.Helper()
	d.run("opening sign-out", chromedp.Navigate(d.base+"/auth/logout"))
	d.page("logout", "/auth/logout", "You are signed in as demo")
	d.submit("signing out", chromedp.Click(chromedp.CSS("#signout")))
	d.page("signed-out", "/auth/login?signed_out=1", "You are signed out.")
	d.run("opening the app again", chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS("#signin")))
	d.page("login-again", "/auth/login?redirect=%2F", "caddy-authsession demo")
}

// TestPortalE2EEmail drives Chromium through make run's configuration:
// the protected app redirects to sign-in; login and password; "email me
// a code"; the code read from Caddy's log (the demo's development
// delivery); the protected app, under a new session id; sign-out; and the
// redirect to sign-in again.
func TestPortalE2EEmail(t *testing.T) {
	d := startE2EDemo(t, "email")
	pre := d.signIn()
	seen := len(d.mailedCodes())
	d.submit("asking for a code", chromedp.Click(chromedp.CSS("#factor-email")))
	d.page("email-code", "/auth/otp?factor=email&redirect=%2F", "We sent a one-time code to d***@example.com")
	code := d.nextCode(seen)
	d.submit("entering the code", chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#verify")))
	d.landed(pre)
	// The pre-login id opens nothing.
	if got := gateStatus(t, d.base, pre); got != 401 {
		t.Fatalf("the pre-login session id still answers %d at the gate", got)
	}
	d.signOut()
}

// TestPortalE2ETOTP is the same with the authenticator app's code,
// computed here from the demo secret of the README, and "trust this
// browser" ticked: after signing out, the password alone signs in again.
func TestPortalE2ETOTP(t *testing.T) {
	d := startE2EDemo(t, "totp")
	pre := d.signIn()
	d.submit("choosing the app", chromedp.Click(chromedp.CSS("#factor-totp")))
	d.page("totp-code", "/auth/otp?factor=totp&redirect=%2F", "Code from your authenticator app")
	code, err := state.TOTPPolicy{}.Defaults().Code("JBSWY3DPEHPK3PXP", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.submit("entering the code", chromedp.SendKeys(chromedp.CSS("#code"), code), chromedp.Click(chromedp.CSS("#trust")),
		chromedp.Click(chromedp.CSS("#verify")))
	d.landed(pre)
	d.signOut()
	d.submit("signing in on the trusted browser",
		chromedp.SendKeys(chromedp.CSS("#login"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo-password"),
		chromedp.Click(chromedp.CSS("#signin")))
	d.page("trusted-sign-in", "/", "Hello demo, this is the protected demo app.")
}
