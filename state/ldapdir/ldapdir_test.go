package ldapdir_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// config returns the configuration of a directory on srv as the docs
// describe it: the service account, people by uid or mail, groups by
// member.
func config(srv *ldaptest.Server) ldapdir.Config {
	return ldapdir.Config{
		Name: "corp", URLs: []string{srv.URL()},
		BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN:      ldaptest.PeopleDN,
		UserFilter:  "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))",
		GroupBaseDN: ldaptest.GroupsDN, GroupFilter: "(&(objectClass=groupOfNames)(member={dn}))",
		TLS: srv.TLSConfig(), Timeout: 2 * time.Second,
	}
}

func open(t *testing.T, cfg ldapdir.Config) *ldapdir.Directory {
	t.Helper()
	d, err := ldapdir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestLookupMapsAttributesAndGroups(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d := open(t, config(srv))
	var _ state.Directory = d
	ctx := context.Background()
	for _, name := range []string{"alice", "ALICE", "alice@example.com"} {
		u, ok, err := d.Lookup(ctx, name)
		if err != nil || !ok {
			t.Fatalf("Lookup(%q) = %v, %v", name, ok, err)
		}
		want := state.User{
			ID: "alice", Login: "alice", Group: "ops", Mail: "alice@example.com", Phone: "+15550001111",
			Factors: []string{state.FactorEmail, state.FactorSMS}, Store: "corp",
		}
		if u.ID != want.ID || u.Login != want.Login || u.Group != want.Group || u.Mail != want.Mail ||
			u.Phone != want.Phone || u.Store != want.Store || len(u.Factors) != 2 ||
			u.Factors[0] != want.Factors[0] || u.Factors[1] != want.Factors[1] || u.PasswordHash != "" {
			t.Fatalf("Lookup(%q) = %+v, want %+v", name, u, want)
		}
	}
	bob, ok, err := d.Lookup(ctx, "bob")
	if err != nil || !ok || bob.Group != "" || bob.Phone != "" || len(bob.Factors) != 1 || bob.Factors[0] != state.FactorEmail {
		t.Fatalf("bob = %+v, %v, %v", bob, ok, err)
	}
	carol, ok, err := d.Lookup(ctx, "carol")
	if err != nil || !ok || len(carol.Factors) != 0 {
		t.Fatalf("carol = %+v, %v, %v", carol, ok, err)
	}
	if _, ok, err := d.Lookup(ctx, "mallory"); ok || err != nil {
		t.Fatalf("an unknown user: %v, %v", ok, err)
	}
	k, err := state.DirectoryKey(ctx, d, "Alice@Example.com")
	if err != nil || k != "alice" {
		t.Fatalf("DirectoryKey = %q, %v; want the directory's id", k, err)
	}
}

func TestGroupFromAttributeTakesTheDNsFirstValue(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.People+`
dn: uid=dave,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: Example
departmentNumber: cn=admins,ou=groups,dc=example,dc=com
userPassword: dave-pass
`)
	cfg := config(srv)
	cfg.GroupFilter, cfg.Attributes.Group = "", "departmentNumber"
	d := open(t, cfg)
	u, ok, err := d.Lookup(context.Background(), "dave")
	if err != nil || !ok || u.Group != "admins" {
		t.Fatalf("dave = %+v, %v, %v; want group admins", u, ok, err)
	}
}

func TestCheckPasswordBindsAsTheUser(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d := open(t, config(srv))
	ctx := context.Background()
	u, ok, err := d.CheckPassword(ctx, "alice@example.com", ldaptest.AlicePassword)
	if err != nil || !ok || u.ID != "alice" {
		t.Fatalf("right password: %+v, %v, %v", u, ok, err)
	}
	for _, c := range []struct{ login, pw string }{
		{"alice", "wrong"},
		{"alice", ldaptest.BobPassword},
		{"mallory", "anything"},
		{"bob", ldaptest.AlicePassword},
	} {
		if u, ok, err := d.CheckPassword(ctx, c.login, c.pw); ok || err != nil || u.ID != "" {
			t.Fatalf("CheckPassword(%q, %q) = %+v, %v, %v; want a plain failure", c.login, c.pw, u, ok, err)
		}
	}
	// The service connection searched as itself after the user binds:
	// a user's bind never changed the pool's identity.
	if u, ok, err := d.Lookup(ctx, "carol"); err != nil || !ok || u.ID != "carol" {
		t.Fatalf("lookup after user binds: %+v, %v, %v", u, ok, err)
	}
}

// TestEmptyPasswordIsRefusedBeforeAnyBind is the regression test of the
// unauthenticated bind: an LDAP simple bind with a DN and no password is
// an anonymous bind, which servers accept. Here the server is stopped, so
// an attempted bind would answer "unavailable"; the refusal proves none
// was tried.
func TestEmptyPasswordIsRefusedBeforeAnyBind(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.Cache = time.Minute
	d := open(t, cfg)
	ctx := context.Background()
	if _, ok, err := d.Lookup(ctx, "alice"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := d.CheckPassword(ctx, "alice", ""); ok || err != nil {
		t.Fatalf("empty password with the server up: %v, %v", ok, err)
	}
	srv.Stop()
	if _, ok, err := d.CheckPassword(ctx, "alice", ""); ok || err != nil {
		t.Fatalf("empty password with the server down: %v, %v; want a refusal without a bind", ok, err)
	}
}

// TestFilterInjectionIsEscaped tries what breaks an unescaped filter: a
// wildcard, a closing parenthesis opening a clause of its own, a NUL.
// Unescaped, "a*", "ali*" and "*ice" would match alice alone and sign in
// with her password.
func TestFilterInjectionIsEscaped(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d := open(t, config(srv))
	ctx := context.Background()
	for _, name := range []string{
		"*", "a*", "ali*", "*ice", "admin*", "*)(uid=*", "alice)(uid=*", "*)(|(uid=*", `\2a`, `\00`, "alice\x00", "\x00",
		"alice)(|(objectClass=*)", "(uid=alice)",
	} {
		if u, ok, err := d.Lookup(ctx, name); ok || err != nil {
			t.Errorf("Lookup(%q) = %+v, %v, %v; want nobody", name, u, ok, err)
		}
		if u, ok, err := d.CheckPassword(ctx, name, ldaptest.AlicePassword); ok || err != nil {
			t.Errorf("CheckPassword(%q) = %+v, %v, %v; want a plain failure", name, u, ok, err)
		}
	}
}

func TestNewRefusesUnusableConfig(t *testing.T) {
	base := ldapdir.Config{Name: "x", URLs: []string{"ldaps://ldap.example.com"}, BaseDN: "dc=example,dc=com"}
	for name, mut := range map[string]func(*ldapdir.Config){
		"no name":         func(c *ldapdir.Config) { c.Name = "" },
		"no url":          func(c *ldapdir.Config) { c.URLs = nil },
		"http url":        func(c *ldapdir.Config) { c.URLs = []string{"http://ldap.example.com"} },
		"url with path":   func(c *ldapdir.Config) { c.URLs = []string{"ldap://h/dc=x?uid"} },
		"no base":         func(c *ldapdir.Config) { c.BaseDN = "" },
		"bad base":        func(c *ldapdir.Config) { c.BaseDN = "not a dn" },
		"no {login}":      func(c *ldapdir.Config) { c.UserFilter = "(uid=alice)" },
		"broken filter":   func(c *ldapdir.Config) { c.UserFilter = "(uid={login}" },
		"dn, no password": func(c *ldapdir.Config) { c.BindDN = "cn=x,dc=example,dc=com" },
		"bad factor":      func(c *ldapdir.Config) { c.Factors = []string{state.FactorTOTP} },
		"bad group":       func(c *ldapdir.Config) { c.GroupFilter = "(member={dn}" },
	} {
		c := base
		mut(&c)
		if _, err := ldapdir.New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	if _, err := ldapdir.New(base); err != nil {
		t.Fatalf("a good config: %v", err)
	}
}

// TestFailOverToTheNextURL lists a URL nothing listens on first.
func TestFailOverToTheNextURL(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.URLs = []string{"ldap://127.0.0.1:" + strconv.Itoa(testkit.FreePort()), srv.URL()}
	d := open(t, cfg)
	ctx := context.Background()
	if u, ok, err := d.CheckPassword(ctx, "alice", ldaptest.AlicePassword); err != nil || !ok || u.ID != "alice" {
		t.Fatalf("fail-over: %+v, %v, %v", u, ok, err)
	}
	// A wrong service password is a fault of the directory, never an
	// unknown user.
	cfg.BindPassword = "wrong"
	bad := open(t, cfg)
	if _, ok, err := bad.Lookup(ctx, "alice"); ok || !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("wrong service password: %v, %v; want ErrUnavailable", ok, err)
	}
}

// TestServerDownIsUnavailableAndRecovers stops slapd mid-run: lookups and
// password checks answer ErrUnavailable (never "unknown", never "wrong
// password") within the timeout, and work again once slapd is back,
// without a new Directory.
func TestServerDownIsUnavailableAndRecovers(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.Timeout = time.Second
	d := open(t, cfg)
	ctx := context.Background()
	if _, ok, err := d.Lookup(ctx, "alice"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	srv.Stop()
	for range 2 { // the first finds the pooled connection broken
		start := time.Now()
		_, ok, err := d.Lookup(ctx, "alice")
		if ok || !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("lookup with slapd down: %v, %v", ok, err)
		}
		_, ok, err = d.CheckPassword(ctx, "alice", ldaptest.AlicePassword)
		if ok || !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("password check with slapd down: %v, %v", ok, err)
		}
		if el := time.Since(start); el > 2*cfg.Timeout+time.Second {
			t.Fatalf("answers took %v, beyond the timeout %v", el, cfg.Timeout)
		}
	}
	srv.Restart()
	if u, ok, err := d.CheckPassword(ctx, "alice", ldaptest.AlicePassword); err != nil || !ok || u.ID != "alice" {
		t.Fatalf("after the restart: %+v, %v, %v", u, ok, err)
	}
}

// TestHungServerAnswersWithinTimeout: a server that accepts connections
// and never answers is cut off by the timeout.
func TestHungServerAnswersWithinTimeout(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.Timeout = 500 * time.Millisecond
	d := open(t, cfg)
	if _, ok, err := d.Lookup(context.Background(), "alice"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	srv.Freeze()
	defer srv.Thaw()
	start := time.Now()
	_, _, err := d.Lookup(context.Background(), "alice")
	if !errors.Is(err, state.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("hung server: %v after %v", err, time.Since(start))
	}
	_, _, err = d.CheckPassword(context.Background(), "bob", ldaptest.BobPassword)
	if !errors.Is(err, state.ErrUnavailable) || time.Since(start) > 4*time.Second {
		t.Fatalf("hung server, password: %v after %v", err, time.Since(start))
	}
}

// TestCacheHoldsAttributesNotPasswords: a cached user is found with the
// server down, but their password still needs the server.
func TestCacheHoldsAttributesNotPasswords(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	clock := testkit.NewClock(time.Now())
	cfg.Cache, cfg.Now = time.Minute, clock.Now
	d := open(t, cfg)
	ctx := context.Background()
	if _, ok, err := d.CheckPassword(ctx, "alice", ldaptest.AlicePassword); !ok || err != nil {
		t.Fatal(ok, err)
	}
	srv.Stop()
	if u, ok, err := d.Lookup(ctx, "alice"); !ok || err != nil || u.Mail != "alice@example.com" {
		t.Fatalf("cached lookup: %+v, %v, %v", u, ok, err)
	}
	if _, ok, err := d.CheckPassword(ctx, "alice", ldaptest.AlicePassword); ok || !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("a cached user's password with the server down: %v, %v; want ErrUnavailable", ok, err)
	}
	clock.Advance(time.Minute)
	if _, _, err := d.Lookup(ctx, "alice"); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("expired cache entry: %v", err)
	}
}

// TestParallelLookupsShareThePool runs more lookups than pooled
// connections at once.
func TestParallelLookupsShareThePool(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.PoolSize = 2
	d := open(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			name := []string{"alice", "bob", "carol"}[i%3]
			if i%2 == 0 {
				pw := map[string]string{"alice": ldaptest.AlicePassword, "bob": ldaptest.BobPassword, "carol": ldaptest.CarolPassword}[name]
				if _, ok, err := d.CheckPassword(context.Background(), name, pw); !ok || err != nil {
					errs <- errors.Join(err, errors.New(name+": password refused"))
				}
				return
			}
			if u, ok, err := d.Lookup(context.Background(), name); !ok || err != nil || u.ID != name {
				errs <- errors.Join(err, errors.New(name+": not found"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRestartedServerIsUsedAtOnce: connections pooled before a restart are
// dead; the first lookup after it answers, on a new connection.
func TestRestartedServerIsUsedAtOnce(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.PoolSize = 3
	d := open(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 { // fill the pool
		wg.Go(func() {
			if _, ok, err := d.Lookup(ctx, "alice"); !ok || err != nil {
				t.Error(ok, err)
			}
		})
	}
	wg.Wait()
	srv.Stop()
	srv.Restart()
	for range 4 {
		if u, ok, err := d.Lookup(ctx, "bob"); !ok || err != nil || u.ID != "bob" {
			t.Fatalf("lookup after a restart: %+v %v %v", u, ok, err)
		}
	}
}
