package integration

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

// opsInstance is one bin/caddy of the operations tests.
type opsInstance struct {
	base, admin, dir string
}

// startOpsCaddy runs bin/caddy on a Redis store with the API, the gate,
// a health probe on /healthz, the audit log in its own file and the
// events app's debug log in another; instances sharing sealKey and otpKey
// act as one.
func startOpsCaddy(t *testing.T, bin string, redisPort int, sealKey, otpKey string) opsInstance {
	t.Helper()
	dir := t.TempDir()
	port, admin := freePort(), freePort()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	auto_https off
	storage file_system %[2]s
	log audit {
		output file %[2]s/audit.log
		format json
		include authsession.audit
	}
	log events {
		output file %[2]s/events.log
		format json
		level DEBUG
		include events
	}
	authsession {
		store redis redis://127.0.0.1:%[3]d {
			key_prefix ops-it:
			timeout 1s
			max_staleness 2s
		}
		seal_key %[4]s
		api_user admin %[5]s
		api_token ops-token
		otp {
			key %[6]s
			max_attempts 3
		}
		stats_interval 1s
	}
}
http://127.0.0.1:%[7]d {
	authsession /healthz health {
		timeout 500ms
	}
	authsession api
	authsession gate
	respond "ok"
}
`, admin, dir, redisPort, sealKey, demoAdminHash, otpKey, port)
	base := runCaddy(t, bin, dir, cfg, port)
	return opsInstance{base: base, admin: fmt.Sprintf("127.0.0.1:%d", admin), dir: dir}
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// adminCall sends one request to an admin endpoint and returns the status
// and body.
func adminCall(t *testing.T, method, addr, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cli runs `bin/caddy authsession args...` and returns its output.
func cli(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"authsession"}, args...)...).CombinedOutput()
	return string(out), err
}

// jsonLines reads a JSON-lines log file.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: a line is not JSON: %s", path, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// oamCreate creates an authenticated session for user through the OAM API
// and returns its id.
func oamCreate(t *testing.T, base, user string) string {
	t.Helper()
	code, body := redisCall(t, "POST", base+oamBase+"/session", `{"userId":"`+user+`","clientIP":"192.0.2.44"}`, "")
	if code != http.StatusOK {
		t.Fatalf("create for %s: %d %s", user, code, body)
	}
	var out struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.SessionID == "" {
		t.Fatalf("create answer %s", body)
	}
	return out.SessionID
}

// waitGate waits until the gate of base answers want for sid (another
// instance's revocation reaches it through Redis invalidation).
func waitGate(t *testing.T, base, sid string, want int) {
	t.Helper()
	if _, ok := testkit.WaitFor(10*time.Second, func() bool { return gateStatus(t, base, sid) == want }); !ok {
		t.Fatalf("gate of %s for the session: %d, want %d", base, gateStatus(t, base, sid), want)
	}
}

// TestOperationsOnTwoInstancesSharingRedis drives the operator's tools
// against two bin/caddy sharing one Redis: the admin API lists a user's
// sessions made on either instance and revokes them on both, by hash
// prefix and by user, as the CLI does with its table and its --json;
// a block and a counter reset; the audit log file gets one line per event
// and Caddy's events app sees each event once; the metrics show the store
// and the sampled sessions.
func TestOperationsOnTwoInstancesSharingRedis(t *testing.T) {
	bin := caddyBin(t)
	redisPort := redistest.Start(t).Port()
	seal, otpKey := randomKey(), randomKey()
	a := startOpsCaddy(t, bin, redisPort, seal, otpKey)
	b := startOpsCaddy(t, bin, redisPort, seal, otpKey)

	s1 := oamCreate(t, a.base, "alice")
	s2 := oamCreate(t, b.base, "alice")
	s3 := oamCreate(t, a.base, "bob")
	h1, h2 := state.KeyOf(s1).String(), state.KeyOf(s2).String()

	// The admin API of B lists both of alice's sessions, by hash, never by id.
	code, body := adminCall(t, "GET", b.admin, "/authsession/sessions?user=alice")
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, body)
	}
	var listed struct {
		Sessions []struct {
			Hash, User, Status string
			ClientIP           string `json:"client_ip"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(body), &listed); err != nil {
		t.Fatal(err)
	}
	// Both were made in the same second: their order is the store's.
	if len(listed.Sessions) != 2 || !strings.Contains(body, `"hash":"`+h1[:32]+`"`) || !strings.Contains(body, `"hash":"`+h2[:32]+`"`) {
		t.Fatalf("alice's sessions on B: %s", body)
	}
	if listed.Sessions[0].Status != "authenticated" || listed.Sessions[0].ClientIP != "192.0.2.44" || listed.Sessions[0].User != "alice" {
		t.Fatalf("listed session: %+v", listed.Sessions[0])
	}
	if strings.Contains(body, s1) || strings.Contains(body, s2) {
		t.Fatal("the listing shows a session id")
	}

	// The CLI's table, from A's admin endpoint.
	out, err := cli(t, bin, "sessions", "list", "--user", "alice", "--address", a.admin)
	if err != nil {
		t.Fatalf("cli list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "HASH") || !strings.Contains(lines[0], "CLIENT IP") {
		t.Fatalf("cli table:\n%s", out)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, h1[:32]) && !strings.HasPrefix(l, h2[:32]) || !strings.Contains(l, " alice ") ||
			!strings.Contains(l, " authenticated ") || !strings.Contains(l, "192.0.2.44") {
			t.Fatalf("cli table row %q:\n%s", l, out)
		}
	}
	if lines[1][:32] == lines[2][:32] {
		t.Fatalf("cli table lists one session twice:\n%s", out)
	}
	out, err = cli(t, bin, "sessions", "list", "--json", "--address", a.admin)
	if err != nil || !json.Valid([]byte(out)) || strings.Count(out, `"hash"`) != 3 {
		t.Fatalf("cli list --json (every session): %v\n%s", err, out)
	}

	// Revoke s1 on B by a 16-digit prefix: refused on A as well.
	if code, body := adminCall(t, "DELETE", b.admin, "/authsession/sessions/"+h1[:15]); code != http.StatusBadRequest {
		t.Fatalf("revoke by a 15-digit prefix: %d %s", code, body)
	}
	out, err = cli(t, bin, "sessions", "revoke", h1[:16], "--address", b.admin)
	if err != nil || !strings.Contains(out, "revoked "+h1[:32]) || !strings.Contains(out, "1 session(s) revoked") {
		t.Fatalf("cli revoke: %v\n%s", err, out)
	}
	waitGate(t, a.base, s1, http.StatusUnauthorized)
	if code := gateStatus(t, a.base, s2); code != http.StatusOK {
		t.Fatalf("alice's other session: %d", code)
	}
	if code, body := adminCall(t, "DELETE", a.admin, "/authsession/sessions/"+h1[:16]); code != http.StatusNotFound {
		t.Fatalf("revoke of a revoked session: %d %s", code, body)
	}
	// Every user's sessions of alice, by user, on A; bob's stay.
	out, err = cli(t, bin, "sessions", "revoke", "--user", "alice", "--json", "--address", a.admin)
	if err != nil || !strings.Contains(out, h2[:32]) {
		t.Fatalf("cli revoke --user: %v\n%s", err, out)
	}
	waitGate(t, b.base, s2, http.StatusUnauthorized)
	if code := gateStatus(t, b.base, s3); code != http.StatusOK {
		t.Fatalf("bob's session after alice's revocation: %d", code)
	}
	if out, err := cli(t, bin, "sessions", "revoke", "00", "--address", a.admin); err == nil || !strings.Contains(out, "400") {
		t.Fatalf("cli revoke of a short prefix: %v\n%s", err, out)
	}

	// Three wrong codes on the OTP family block the user's factor; the
	// counter reset (CLI, on B) lets a new code through on A.
	const user = "6c1f3b8e-2a4d-4f5e-9b7c-8d9e0f1a2b3c"
	otpSession := func(base string) (string, string) {
		sid := newUUID()
		code, _, body := bearerCall2(t, "PUT", base+"/sessions/"+sid, `{"userId":"`+user+`","passedLoginOTP":false}`)
		if code != http.StatusOK {
			t.Fatalf("PUT otp session: %d %s", code, body)
		}
		var issued struct {
			OTP string `json:"otp"`
		}
		if err := json.Unmarshal([]byte(body), &issued); err != nil || len(issued.OTP) != 6 {
			t.Fatalf("issued %s", body)
		}
		return sid, issued.OTP
	}
	verify := func(base, sid, otp string) (int, string) {
		code, _, body := bearerCall2(t, "POST", base+"/user/otp/verify", `{"otp":"`+otp+`","types":["login"],"sessionId":"`+sid+`"}`)
		return code, body
	}
	sid, otp := otpSession(a.base)
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, otp)+1)%1000000)
	for i := range 3 {
		code, body := verify([]string{a.base, b.base}[i%2], sid, wrong)
		if i == 2 && (code != http.StatusForbidden || !strings.Contains(body, "challenge-blocked")) {
			t.Fatalf("third wrong code: %d %s", code, body)
		}
	}
	// While the factor is blocked no new code is made or sent, on either
	// instance: no session either.
	sid2 := newUUID()
	if code, _, body := bearerCall2(t, "PUT", b.base+"/sessions/"+sid2, `{"userId":"`+user+`","passedLoginOTP":false}`); code != http.StatusForbidden || !strings.Contains(body, "challenge-blocked") {
		t.Fatalf("a new code while the factor is blocked: %d %s", code, body)
	}
	out, err = cli(t, bin, "counters", "reset", "--user", user, "--address", b.admin)
	if err != nil || !strings.Contains(out, "counters of "+user+" reset") {
		t.Fatalf("cli counters reset: %v\n%s", err, out)
	}
	sid3, otp3 := otpSession(a.base)
	if code, body := verify(a.base, sid3, otp3); code != http.StatusNoContent {
		t.Fatalf("a right code after the reset: %d %s", code, body)
	}
	out, err = cli(t, bin, "counters", "reset", "--user", user, "--json", "--address", b.admin)
	if err != nil || !strings.Contains(out, `"reset":false`) {
		t.Fatalf("a second reset: %v\n%s", err, out)
	}

	// The audit logs: one line per event, on the instance that saw it,
	// never an id; the events app of the same instance logged each once.
	want := map[string]int{ // event@instance → count
		"session_created@a": 3 + 1, "session_created@b": 1,
		"session_authenticated@a": 2 + 1, "session_authenticated@b": 1,
		"session_revoked@b": 1, "session_revoked@a": 1,
		// The third wrong code (on A) blocks the first session.
		"challenge_blocked@a": 1,
	}
	var audit []map[string]any
	if _, ok := testkit.WaitFor(5*time.Second, func() bool {
		audit = append(jsonLines(t, filepath.Join(a.dir, "audit.log")), jsonLines(t, filepath.Join(b.dir, "audit.log"))...)
		return len(audit) >= 12
	}); !ok {
		t.Fatalf("audit lines: %v", audit)
	}
	got := map[string]int{}
	for _, inst := range []opsInstance{a, b} {
		name := map[string]string{a.dir: "a", b.dir: "b"}[inst.dir]
		for _, l := range jsonLines(t, filepath.Join(inst.dir, "audit.log")) {
			if l["logger"] != "authsession.audit" || l["event"] != "authsession."+l["msg"].(string) {
				t.Fatalf("audit line %v", l)
			}
			got[l["msg"].(string)+"@"+name]++
		}
		for _, l := range jsonLines(t, filepath.Join(inst.dir, "events.log")) {
			if n, _ := l["name"].(string); strings.HasPrefix(n, "authsession.") && l["msg"] == "event" {
				got["events:"+strings.TrimPrefix(n, "authsession.")+"@"+name]++
			}
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d audit lines, want %d (all: %v)", k, got[k], n, got)
		}
		if got["events:"+k] != n {
			t.Errorf("%s: %d events in the events app, want %d", k, got["events:"+k], n)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(a.dir, "audit.log"))
	rawB, _ := os.ReadFile(filepath.Join(b.dir, "audit.log"))
	for _, id := range []string{s1, s2, s3, sid, sid2, sid3, otp, otp3} {
		if strings.Contains(string(raw)+string(rawB), id) {
			t.Fatalf("the audit log holds a secret (%s)", id)
		}
	}
	for _, l := range audit {
		if l["msg"] == "session_revoked" && l["reason"] != "admin" {
			t.Errorf("revocation line %v: want reason admin", l)
		}
	}

	// Metrics: the store is up; the sampled gauge counts bob's session and
	// the OTP family's; the block was counted by family and factor.
	if _, ok := testkit.WaitFor(10*time.Second, func() bool {
		_, m := adminCall(t, "GET", a.admin, "/metrics")
		return strings.Contains(m, "caddy_authsession_store_up 1") &&
			strings.Contains(m, `caddy_authsession_sessions{status="authenticated"} 2`)
	}); !ok {
		_, m := adminCall(t, "GET", a.admin, "/metrics")
		t.Fatalf("metrics of A:\n%s", grepLines(m, "caddy_authsession_"))
	}
	if _, m := adminCall(t, "GET", a.admin, "/metrics"); !strings.Contains(grepLines(m, "caddy_authsession_challenge_blocked_total{"), `family="otp"} 1`) {
		t.Fatalf("metrics of A:\n%s", grepLines(m, "caddy_authsession_"))
	}
	code, body = adminCall(t, "GET", a.admin, "/authsession/stats")
	if code != http.StatusOK || !strings.Contains(body, `"up":true`) || !strings.Contains(body, `"module":"redis"`) {
		t.Fatalf("stats: %d %s", code, body)
	}
	if out, err := cli(t, bin, "stats", "--address", a.admin); err != nil || !strings.Contains(out, "store: redis (up)") {
		t.Fatalf("cli stats: %v\n%s", err, out)
	}
}

// bearerCall2 is bearerCall with this test's token.
func bearerCall2(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer ops-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := contractClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// TestHealthFollowsRedis: the health probe answers 200 while Redis runs,
// 503 once it is stopped (and the store_up gauge drops to 0), and 200
// again when it is back.
func TestHealthFollowsRedis(t *testing.T) {
	bin := caddyBin(t)
	redis := redistest.Start(t)
	a := startOpsCaddy(t, bin, redis.Port(), randomKey(), randomKey())
	health := func() (int, string) {
		resp, err := http.Get(a.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != http.StatusOK || !strings.Contains(body, `"status":"up"`) {
		t.Fatalf("health with redis up: %d %s", code, body)
	}
	redis.Stop()
	if code, body := health(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"down"`) {
		t.Fatalf("health with redis stopped: %d %s", code, body)
	}
	if _, ok := testkit.WaitFor(10*time.Second, func() bool {
		_, m := adminCall(t, "GET", a.admin, "/metrics")
		return strings.Contains(m, "caddy_authsession_store_up 0")
	}); !ok {
		t.Fatal("store_up did not drop to 0")
	}
	redis.Restart()
	if _, ok := testkit.WaitFor(10*time.Second, func() bool { code, _ := health(); return code == http.StatusOK }); !ok {
		code, body := health()
		t.Fatalf("health after redis restarted: %d %s", code, body)
	}
}
