package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/internal/smtptest"
	"github.com/authsession/caddy-authsession/state"
)

// partners is the second directory's LDIF: erin, known only there, and
// another alice, whom the first directory answers for.
const partners = `dn: uid=erin,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: erin
cn: Erin Partner
sn: Partner
mail: erin@partner.example
userPassword: erin-pass-5

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Partner
sn: Partner
mail: alice@partner.example
userPassword: partner-alice-pass
`

// ldapIT is Caddy with a users file and two LDAP directories (corp, then
// partners), mail codes through a loopback SMTP server.
type ldapIT struct {
	t              *testing.T
	tester         *caddytest.Tester
	base           string
	corp, partners *ldaptest.Server
	smtp           *smtptest.Server
}

// ldapConfig is the Caddyfile of ldapIT; ldap.go's docs show the same
// block. The bind password comes from the environment.
func ldapConfig(usersFile, smtpPort string, corp, partners *ldaptest.Server) string {
	dir := func(name string, s *ldaptest.Server, extra string) string {
		return fmt.Sprintf(`
		directory %s ldap {
			url %s
			bind_dn %s
			bind_password {env.AUTHSESSION_IT_LDAP_PASSWORD}
			base_dn %s
			user_filter "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))"
			attributes {
				id uid  login uid  mail mail  phone mobile
			}
			%s
			tls {
				ca_file %s
			}
			timeout 2s
		}`, name, s.URL(), ldaptest.ServiceDN, ldaptest.PeopleDN, extra, s.CAFile())
	}
	return `{
	{ADMIN}
	auto_https off
	authsession {
		api_user ` + testAPIUser + ` ` + testAPIHash + `
		users_file ` + usersFile + `
		cookie {
			insecure
		}` + dir("corp", corp, "group_base_dn "+ldaptest.GroupsDN+"\n\t\t\tgroup_filter (&(objectClass=groupOfNames)(member={dn}))") +
		dir("partners", partners, "cache 1m") + `
		otp {
			delivery_timeout 10s
			smtp {
				host 127.0.0.1
				port ` + smtpPort + `
				tls none
				username mailer
				password smtp-pass-77
				from login@example.com
			}
		}
		authn {
			client ` + itClient + ` ` + sha256Hex(itClientSecret) + `
		}
	}
}
http://localhost:{PORT} {
	authsession portal
	authsession api
	handle /ops* {
		authsession gate {
			require_group ops
		}
		respond "ops area"
	}
	handle {
		authsession gate {
			upstream_header X-Auth-Login login
			upstream_header X-Auth-Store id_store
			upstream_header X-Auth-Group group
		}
		respond "hello {http.request.header.X-Auth-Login} of {http.request.header.X-Auth-Store} in [{http.request.header.X-Auth-Group}]"
	}
}
`
}

func startLDAPIT(t *testing.T) *ldapIT {
	return startLDAPITWith(t, nil)
}

// startLDAPITWith is startLDAPIT with before, if not nil, called with the
// Caddyfile (expanded) before Caddy loads it; it may change it.
func startLDAPITWith(t *testing.T, before func(cfg string) string) *ldapIT {
	t.Setenv("AUTHSESSION_IT_LDAP_PASSWORD", ldaptest.ServicePass)
	it := &ldapIT{
		t: t, corp: ldaptest.Start(t, ""), partners: ldaptest.Start(t, partners),
		smtp: smtptest.Start(t, "mailer", "smtp-pass-77"),
	}
	users := filepath.Join(t.TempDir(), "users.json")
	hash := "$2a$10$6kNVGTRg2YrzJFmd.mn0h.bnuFpHxHaZmwJBdppfgTbMSjvTK9XGq" // demo-password
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"demo","login":"demo","mail":"demo@example.com",
		"password_hash":"`+hash+`","factors":["ChallengeEmail"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ldapConfig(users, fmt.Sprint(it.smtp.Port), it.corp, it.partners)
	if before != nil {
		cfg = before(cfg)
	}
	tester, port := newTester(t, cfg)
	it.tester, it.base = tester, fmt.Sprintf("http://localhost:%d", port)
	return it
}

// mailedCode waits for the next mail, checks its recipient and returns
// the code in it.
func (it *ldapIT) mailedCode(to string) string {
	it.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mail, err := it.smtp.Next(ctx)
	if err != nil {
		it.t.Fatal(err)
	}
	m := mailCodeRE.FindStringSubmatch(mail.Data)
	if m == nil || len(mail.To) != 1 || mail.To[0] != to {
		it.t.Fatalf("mail %+v, want one to %s", mail, to)
	}
	return m[1]
}

// signIn signs in through the portal with login and password, and the
// code mailed to mail; it returns the browser, on the protected page.
func (it *ldapIT) signIn(login, password, mail string) *formBrowser {
	it.t.Helper()
	br := newFormBrowser(it.t, it.base)
	br.do("GET", "/auth/login?redirect=%2Fapp", nil)
	resp := br.do("POST", "/auth/login", url.Values{
		"login": {login}, "password": {password}, "redirect": {"/app"}, "csrf": {br.csrf()},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/otp?factor=email&redirect=%2Fapp" {
		it.t.Fatalf("%s's password: %d %q\n%s", login, resp.StatusCode, resp.Header.Get("Location"), br.page)
	}
	br.do("GET", "/auth/otp?factor=email&redirect=%2Fapp", nil)
	resp = br.do("POST", "/auth/otp", url.Values{
		"factor": {"email"}, "code": {it.mailedCode(mail)}, "redirect": {"/app"}, "csrf": {br.csrf()},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
		it.t.Fatalf("%s's code: %d %q\n%s", login, resp.StatusCode, resp.Header.Get("Location"), br.page)
	}
	return br
}

// loginStatus posts a sign-in and returns its status and page.
func (it *ldapIT) loginStatus(login, password string) (int, string) {
	it.t.Helper()
	br := newFormBrowser(it.t, it.base)
	br.do("GET", "/auth/login", nil)
	resp := br.do("POST", "/auth/login", url.Values{"login": {login}, "password": {password}, "csrf": {br.csrf()}})
	return resp.StatusCode, br.page
}

// TestLDAPPortalSignIn signs in through the portal as directory users with
// a password and an email code: alice from the first directory (by mail
// address, with her group from a group search), erin from the second;
// alice's namesake in the second directory is never asked. The session
// carries its directory as idStoreName (the gate's id_store, OAM's
// search by idStore). Wrong passwords and filter injections are plain
// failures.
func TestLDAPPortalSignIn(t *testing.T) {
	it := startLDAPIT(t)
	br := it.signIn("alice@example.com", ldaptest.AlicePassword, "alice@example.com")
	br.do("GET", "/app", nil)
	if br.page != "hello alice of corp in [ops]" {
		t.Fatalf("app said %q", br.page)
	}
	if resp := br.do("GET", "/ops/x", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice (group ops) at the ops area: %d", resp.StatusCode)
	}
	erin := it.signIn("erin", "erin-pass-5", "erin@partner.example")
	erin.do("GET", "/app", nil)
	if erin.page != "hello erin of partners in []" {
		t.Fatalf("app said %q to erin", erin.page)
	}
	if resp := erin.do("GET", "/ops/x", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("erin (no group) at the ops area: %d, want 403", resp.StatusCode)
	}
	demo := it.signIn("demo", "demo-password", "demo@example.com")
	demo.do("GET", "/app", nil)
	if demo.page != "hello demo of UserIdentityStore1 in []" {
		t.Fatalf("app said %q to the users file's demo", demo.page)
	}
	// The second directory's alice is shadowed by the first's.
	if st, _ := it.loginStatus("alice", "partner-alice-pass"); st != http.StatusUnauthorized {
		t.Fatalf("the partners' alice password: %d, want 401", st)
	}
	for _, c := range []struct{ login, pw string }{
		{"alice", "wrong"},
		{"alice", ""},
		{"mallory", "x"},
		{"a*", ldaptest.AlicePassword},
		{"ali*", ldaptest.AlicePassword},
		{"*)(uid=*", ldaptest.AlicePassword},
		{`\00`, ldaptest.AlicePassword},
		{"alice)(|(uid=*", ldaptest.AlicePassword},
	} {
		st, page := it.loginStatus(c.login, c.pw)
		if st != http.StatusUnauthorized && (c.pw != "" || st != http.StatusBadRequest) {
			t.Fatalf("sign-in %q/%q: %d\n%s", c.login, c.pw, st, page)
		}
	}
	// OAM: search by idStore.
	st, body := oamCall(t, "POST", it.base+"/oam/services/rest/access/api/v1/sessions?idStore=partners", "")
	if st != http.StatusOK || !strings.Contains(body, `"userId":"erin"`) || strings.Contains(body, `"userId":"alice"`) ||
		!strings.Contains(body, `"idStoreName":"partners"`) {
		t.Fatalf("OAM search by idStore=partners: %d %s", st, body)
	}
}

// TestLDAPChallengeAPI runs the challenge API with a directory user: an
// email code to the directory's address, validated; the session is
// authenticated for the gate.
func TestLDAPChallengeAPI(t *testing.T) {
	it := startLDAPIT(t)
	a := &authnIT{t: t, tester: it.tester, base: it.base, smtp: it.smtp}
	start := a.start("bob")
	if start.Status.Status != "pending verification" {
		t.Fatalf("POST for bob: %+v", start)
	}
	b := a.initOp(start, start.Nonce, "ChallengeEmail")
	code := it.mailedCode("bob@example.com")
	st, w := a.validate(start, b.Nonce, wrongCode(code))
	if st != 200 || w.Status.Message != "wrong_answer" {
		t.Fatalf("wrong code: %d %+v", st, w)
	}
	st, c := a.validate(start, w.Nonce, code)
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("right code: %d %+v", st, c)
	}
	if g := cookieStatus(t, it.base+"/app", "authsession", c.SessionID); g != http.StatusOK {
		t.Fatalf("gate: %d", g)
	}
	// carol has no mail: missing registration, as a users-file user
	// without factors.
	if c := a.start("carol"); c.Status.Status != "missing registration" {
		t.Fatalf("carol: %+v", c)
	}
	if c := a.start("nobody-here"); c.Status.Status != "missing registration" {
		t.Fatalf("an unknown user: %+v", c)
	}
}

// TestLDAPOutage stops the first directory mid-run: the portal's sign-in
// answers a 503 page within the timeout (no failure counted, not a wrong
// password), the challenge API its 503, sessions already made keep
// working; once slapd is back, sign-in works without restarting Caddy.
func TestLDAPOutage(t *testing.T) {
	it := startLDAPIT(t)
	br := it.signIn("alice", ldaptest.AlicePassword, "alice@example.com")
	it.corp.Stop()
	for range 2 {
		start := time.Now()
		st, page := it.loginStatus("alice", ldaptest.AlicePassword)
		if st != http.StatusServiceUnavailable || !strings.Contains(page, "unavailable") {
			t.Fatalf("sign-in with the directory down: %d\n%s", st, page)
		}
		if el := time.Since(start); el > 6*time.Second {
			t.Fatalf("the 503 took %v", el)
		}
	}
	// erin is in the second directory, but the first cannot say it does
	// not know her: no answer for her either.
	if st, _ := it.loginStatus("erin", "erin-pass-5"); st != http.StatusServiceUnavailable {
		t.Fatalf("erin with the first directory down: %d, want 503", st)
	}
	a := &authnIT{t: t, tester: it.tester, base: it.base, smtp: it.smtp}
	st, ans := a.call("POST", `{"clientInfo":{"clientId":"`+itClient+`","clientSecret":"`+itClientSecret+
		`"},"userInfo":{"userId":"bob"},"timeToLiveInSec":300}`)
	if st != http.StatusServiceUnavailable {
		t.Fatalf("challenge API with the directory down: %d %+v", st, ans)
	}
	if resp := br.do("GET", "/app", nil); resp.StatusCode != http.StatusOK || br.page != "hello alice of corp in [ops]" {
		t.Fatalf("a session made before the outage: %d %q", resp.StatusCode, br.page)
	}
	it.corp.Restart()
	it.signIn("alice", ldaptest.AlicePassword, "alice@example.com")
}

// TestLDAPTOTPEnrolledWithTheCLI enrols an authenticator for a directory
// user with bin/caddy's `authsession user totp --config` against the
// config's file store, then runs the challenge API with a TOTP code for
// that user through Caddy on the same store.
func TestLDAPTOTPEnrolledWithTheCLI(t *testing.T) {
	bin := caddyBin(t)
	const secret = "GEZDGNBVGY3TQOJQ"
	it := startLDAPITWith(t, func(cfg string) string {
		dir := t.TempDir()
		cfg = strings.Replace(cfg, "\tauthsession {\n", "\tauthsession {\n\t\tstore file "+filepath.Join(dir, "sessions.db")+"\n", 1)
		file := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(file, []byte(expand(cfg, freePort())), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "authsession", "user", "totp", "--config", file, "--adapter", "caddyfile",
			"--login", "bob", "--secret", secret).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "secret: "+secret) {
			t.Fatalf("the CLI: %v\n%s", err, out)
		}
		return cfg
	})
	a := &authnIT{t: t, tester: it.tester, base: it.base, smtp: it.smtp}
	start := a.start("bob")
	b := a.initOp(start, start.Nonce, "ChallengeOMATOTP")
	code, err := state.TOTPPolicy{}.Defaults().Code(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, c := a.validate(start, b.Nonce, code)
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("bob's TOTP code: %d %+v", st, c)
	}
	// carol has no authenticator: the factor is not hers.
	start = a.start("carol")
	if start.Status.Status != "missing registration" {
		t.Fatalf("carol: %+v", start)
	}
}
