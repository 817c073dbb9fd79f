package portal

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

const (
	demoPassword = "demo-password"
	demoSecret   = "JBSWY3DPEHPK3PXP"
)

// mailbox is a delivery.Deliverer that keeps the messages it is given.
type mailbox struct {
	mu   sync.Mutex
	msgs []delivery.Message
}

func (m *mailbox) Deliver(_ context.Context, msg delivery.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *mailbox) last(t *testing.T) delivery.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		t.Fatal("no code was delivered")
	}
	return m.msgs[len(m.msgs)-1]
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// portalFixture serves the portal under /auth and, elsewhere, a gate in
// front of an app answering "hello <login>", on a loopback test server.
type portalFixture struct {
	srv    *httptest.Server
	clk    *testkit.Clock
	store  *state.Memory
	portal *Portal
	gate   *handlers.Gate // the app's; set its rules before the first request
	mail   *mailbox
	logs   *observer.ObservedLogs
}

var portalHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(demoPassword), 4)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// newPortalFixture has the users "demo" (email and TOTP), "mailonly"
// (email), "totponly" (TOTP) and "smsonly" (a code by the SMS webhook), all with password demo-password. The
// client IP is read from the X-Test-IP header when present.
func newPortalFixture(t *testing.T, templates string) *portalFixture {
	t.Helper()
	f := &portalFixture{clk: testkit.NewClock(testkit.Start), mail: &mailbox{}}
	f.store = state.NewMemory(state.MemoryOptions{Now: f.clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = f.store.Close() })
	core, logs := observer.New(zap.DebugLevel)
	f.logs = logs
	logger := zap.New(core)
	sealer, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users.json")
	h := portalHash()
	err = os.WriteFile(p, []byte(`{"users":[
	{"id":"demo-id","login":"demo","group":"Default","mail":"demo@example.com","password_hash":"`+h+`",
	 "totp_secret":"`+demoSecret+`","factors":["ChallengeEmail","ChallengeOMATOTP"]},
	{"id":"mail-id","login":"mailonly","mail":"m@example.com","password_hash":"`+h+`","factors":["ChallengeEmail"]},
	{"id":"totp-id","login":"totponly","password_hash":"`+h+`","totp_secret":"`+demoSecret+`","factors":["ChallengeOMATOTP"]},
	{"id":"sms-id","login":"smsonly","phone":"+1 555 0100 1234","password_hash":"`+h+`","factors":["ChallengeSMS"]},
	{"id":"none-id","login":"nofactor","password_hash":"`+h+`"}]}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	users, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := LoadPages(templates)
	if err != nil {
		t.Fatal(err)
	}
	env := &handlers.Env{
		Store: f.store, Now: f.clk.Now, Sealer: sealer, Logger: logger,
		Policy: handlers.Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute},
	}
	f.portal = &Portal{
		Env: env, Users: users.Directory("UserIdentityStore1"), OTP: state.OTPPolicy{}.Defaults(), TOTP: state.TOTPPolicy{}.Defaults(),
		Key: []byte("otp-hmac-key-for-tests-000000000"), CSRFKey: []byte("csrf-key-for-tests"),
		Delivery: f.mail, Cookie: CookieSpec{Name: "authsession", Insecure: true}, Pages: pages,
		Title:    "Example sign-in",
		ClientIP: func(r *http.Request) string { return r.Header.Get("X-Test-IP") },
	}
	if err := f.portal.Init(); err != nil {
		t.Fatal(err)
	}
	gate := &handlers.Gate{
		Store: f.store, Now: f.clk.Now, Logger: logger, CookieName: "authsession",
		LoginURL: "/auth/login", SetHeaders: []handlers.HeaderField{{Name: "X-Auth-User", Field: "login"}},
	}
	f.gate = gate
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.portal.Owns(r.URL.Path) {
			f.portal.ServeHTTP(w, r)
			return
		}
		if _, out := gate.Check(w, r); out != handlers.Pass {
			return
		}
		io.WriteString(w, "hello "+r.Header.Get("X-Auth-User"))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	f    *portalFixture
	c    *http.Client
	ip   string
	page string // body of the last page
}

func (f *portalFixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, ip: "192.0.2.1", c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(r *http.Request) *http.Response {
	b.t.Helper()
	r.Header.Set("Accept", "text/html")
	if b.ip != "" {
		r.Header.Set("X-Test-IP", b.ip)
	}
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.page = string(body)
	return resp
}

func (b *browser) get(path string) *http.Response {
	b.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, b.f.srv.URL+path, nil)
	return b.do(r)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the token in the last page.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(b.page)
	if m == nil {
		b.t.Fatalf("no csrf token in page:\n%s", b.page)
	}
	return m[1]
}

// post submits a form; a "csrf" of "-" leaves the field out, none takes
// it from the last page.
func (b *browser) post(path string, kv ...string) *http.Response {
	b.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	if _, ok := v["csrf"]; !ok {
		v.Set("csrf", b.csrf())
	} else if v.Get("csrf") == "-" {
		v.Del("csrf")
	}
	r, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

// cookie returns the browser's session cookie value.
func (b *browser) cookie() string {
	u, _ := url.Parse(b.f.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "authsession" {
			return c.Value
		}
	}
	return ""
}

func wantStatus(t *testing.T, resp *http.Response, status int, body string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, status, body)
	}
}

func wantLocation(t *testing.T, resp *http.Response, loc string) {
	t.Helper()
	if got := resp.Header.Get("Location"); got != loc {
		t.Fatalf("Location %q, want %q", got, loc)
	}
}

// signIn walks login and password for login, leaving the browser on the
// factor step; it returns the pre-auth session id.
func (b *browser) signIn(login, redirect string) string {
	b.t.Helper()
	b.get("/auth/login")
	resp := b.post("/auth/login", "login", login, "password", demoPassword, "redirect", redirect)
	wantStatus(b.t, resp, http.StatusSeeOther, b.page)
	return b.cookie()
}

// mailCode completes the email factor for a browser left by signIn and
// returns the final answer.
func (b *browser) mailCode() *http.Response {
	b.t.Helper()
	b.get("/auth/otp")
	resp := b.post("/auth/otp/send")
	wantStatus(b.t, resp, http.StatusSeeOther, b.page)
	b.get("/auth/otp?factor=email")
	return b.post("/auth/otp", "factor", "email", "code", b.f.mail.last(b.t).Code)
}
