package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// recorded are the events the recorder handlers saw, by name.
var recorded struct {
	mu     sync.Mutex
	events []caddy.Event
}

// eventRecorder is a test-only events handler (events.handlers.it_recorder)
// that keeps every event it is given: a subscriber as an operator's alert
// hook would be.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.it_recorder", New: func() caddy.Module { return new(eventRecorder) }}
}

func (eventRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	return nil
}

func (eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	recorded.mu.Lock()
	recorded.events = append(recorded.events, e)
	recorded.mu.Unlock()
	return nil
}

var _ caddyevents.Handler = eventRecorder{}

// TestEventsReachASubscribedHandler: a handler subscribed to every event
// through Caddy's events app sees each authsession event of a portal
// sign-in once, with its data (user, login, session prefix, family,
// factor, client IP) and never a secret: a wrong password, the pre-auth
// session, the code, the authentication with a trusted device, the
// sign-out; a TOTP enrolment through the OTP API; and each is also one
// line on the authsession.audit logger, routed to its own file.
func TestEventsReachASubscribedHandler(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	hash := "$2a$10$6kNVGTRg2YrzJFmd.mn0h.bnuFpHxHaZmwJBdppfgTbMSjvTK9XGq" // demo-password
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"ev-user","login":"evy","mail":"evy@example.com",
		"password_hash":"`+hash+`","factors":["ChallengeEmail"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, auditFile := filepath.Join(dir, "caddy.log"), filepath.Join(dir, "audit.log")
	_, port := newTester(t, fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	log {
		output file %s
		format json
	}
	log audit {
		output file %s
		format json
		include authsession.audit
	}
	events {
		on * it_recorder
	}
	authsession {
		users_file %s
		api_token events-token
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
	authsession api otp
	authsession portal {
		trust_device 24h
	}
	authsession gate
	respond "hello"
}
`, logFile, auditFile, users))
	recorded.mu.Lock()
	recorded.events = nil
	recorded.mu.Unlock()
	base := fmt.Sprintf("http://localhost:%d", port)
	br := newFormBrowser(t, base)
	br.do("GET", "/auth/login", nil)
	if resp := br.do("POST", "/auth/login", url.Values{"login": {"evy"}, "password": {"wrong-password"}, "csrf": {br.csrf()}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp := br.do("POST", "/auth/login", url.Values{"login": {"evy"}, "password": {"demo-password"}, "csrf": {br.csrf()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password: %d\n%s", resp.StatusCode, br.page)
	}
	br.do("GET", "/auth/otp?factor=email", nil)
	var code string
	testkit.WaitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(logFile)
		if m := itLogCode.FindAllStringSubmatch(string(b), -1); m != nil {
			code = m[len(m)-1][1]
		}
		return code != ""
	})
	if code == "" {
		t.Fatal("no code in Caddy's log")
	}
	if resp := br.do("POST", "/auth/otp", url.Values{"factor": {"email"}, "code": {code}, "trust": {"1"}, "csrf": {br.csrf()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("code: %d\n%s", resp.StatusCode, br.page)
	}
	u, _ := url.Parse(base)
	var sid string
	for _, c := range br.jar.Cookies(u) {
		if c.Name == "sid" {
			sid = c.Value
		}
	}
	br.do("GET", "/auth/logout", nil)
	if resp := br.do("POST", "/auth/logout", url.Values{"csrf": {br.csrf()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/user/totp/enroll", strings.NewReader(`{"userId":"evy"}`))
	req.Header.Set("Authorization", "Bearer events-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("totp enroll: %d", resp.StatusCode)
	}

	recorded.mu.Lock()
	events := append([]caddy.Event(nil), recorded.events...)
	recorded.mu.Unlock()
	var got []string
	for _, e := range events {
		if !strings.HasPrefix(e.Name(), "authsession.") {
			continue
		}
		d := e.Data
		got = append(got, fmt.Sprintf("%s %v/%v/%v/%v", e.Name(), d["family"], d["factor"], d["reason"], d["user"]))
		if d["client_ip"] == nil && e.Name() != "authsession.factor_enrolled" {
			t.Errorf("%s has no client_ip: %v", e.Name(), d)
		}
		if e.Origin() == nil || e.Origin().CaddyModule().ID != "authsession" {
			t.Errorf("%s: origin %v, want the authsession app", e.Name(), e.Origin())
		}
		for _, v := range d {
			if s, _ := v.(string); s != "" && (s == sid || s == code || strings.Contains(s, "-password")) {
				t.Errorf("%s carries a secret: %v", e.Name(), d)
			}
		}
	}
	want := []string{
		"authsession.login_failed portal/password/wrong_password/ev-user",
		"authsession.session_created portal/<nil>/<nil>/ev-user",
		"authsession.session_authenticated portal/ChallengeEmail/<nil>/ev-user",
		"authsession.device_trusted portal/<nil>/<nil>/ev-user",
		"authsession.session_revoked portal/<nil>/logout/ev-user",
		"authsession.factor_enrolled otp/ChallengeOMATOTP/<nil>/ev-user",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events seen by the subscribed handler:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	audit := jsonLines(t, auditFile)
	if len(audit) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(audit), len(want), audit)
	}
	for i, l := range audit {
		if "authsession."+l["msg"].(string) != strings.Fields(want[i])[0] || l["logger"] != "authsession.audit" {
			t.Errorf("audit line %d: %v, want %s", i, l, want[i])
		}
	}
}
