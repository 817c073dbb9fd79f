package caddymodule

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/state"
)

func TestParseDirectoryBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`authsession {
		users_file users.json
		directory corp ldap {
			url ldaps://ldap1.example.com ldaps://ldap2.example.com
			url ldap://ldap3.example.com:389
			bind_dn cn=authsession,ou=svc,dc=example,dc=com
			bind_password {env.LDAP_PASSWORD}
			base_dn ou=people,dc=example,dc=com
			user_filter "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))"
			attributes id uid  login uid  mail mail  phone mobile  group memberOf  name cn
			group_filter (member={dn})
			group_base_dn ou=groups,dc=example,dc=com
			group_attribute cn
			tls {
				ca_file /etc/ssl/ldap-ca.pem
				server_name ldap.example.com
			}
			timeout 3s
			cache 5m
			factors ChallengeEmail
		}
		directory ad ldap {
			url ldaps://dc1.corp.example.com:636
			base_dn DC=corp,DC=example,DC=com
			attributes {
				id sAMAccountName
				mail mail
			}
		}
	}`)
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := []DirectoryConfig{{
		Name: "corp", Kind: "ldap",
		URLs:   []string{"ldaps://ldap1.example.com", "ldaps://ldap2.example.com", "ldap://ldap3.example.com:389"},
		BindDN: "cn=authsession,ou=svc,dc=example,dc=com", BindPassword: "{env.LDAP_PASSWORD}",
		BaseDN: "ou=people,dc=example,dc=com", UserFilter: "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))",
		Attributes:  map[string]string{"id": "uid", "login": "uid", "mail": "mail", "phone": "mobile", "group": "memberOf", "name": "cn"},
		GroupFilter: "(member={dn})", GroupBaseDN: "ou=groups,dc=example,dc=com", GroupAttribute: "cn",
		TLS:     &DirectoryTLS{CAFile: "/etc/ssl/ldap-ca.pem", ServerName: "ldap.example.com"},
		Timeout: caddy.Duration(3 * time.Second), Cache: caddy.Duration(5 * time.Minute),
		Factors: []string{"ChallengeEmail"},
	}, {
		Name: "ad", Kind: "ldap", URLs: []string{"ldaps://dc1.corp.example.com:636"}, BaseDN: "DC=corp,DC=example,DC=com",
		Attributes: map[string]string{"id": "sAMAccountName", "mail": "mail"},
	}}
	if !reflect.DeepEqual(a.Directories, want) {
		t.Fatalf("got  %+v\nwant %+v", a.Directories, want)
	}
	// The JSON config names the same fields.
	b, _ := json.Marshal(a.Directories[1])
	if string(b) != `{"name":"ad","kind":"ldap","urls":["ldaps://dc1.corp.example.com:636"],"base_dn":"DC=corp,DC=example,DC=com","attributes":{"id":"sAMAccountName","mail":"mail"}}` {
		t.Fatalf("JSON %s", b)
	}
}

func TestParseDirectoryRejections(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"directory corp", "needs <name> <kind>"},
		{"directory corp ad {\n}", "unknown kind"},
		{"directory corp ldap {\nurl\n}", "wrong argument count"},
		{"directory corp ldap {\nbase_dn a b\n}", "wrong argument count"},
		{"directory corp ldap {\nbase_dn a\nbase_dn b\n}", "given twice"},
		{"directory corp ldap {\nattributes {\ntitle cn\n}\n}", "unknown directory attribute"},
		{"directory corp ldap {\nattributes {\nid uid id cn\n}\n}", "given twice"},
		{"directory corp ldap {\nattributes {\nid\n}\n}", "has no value"},
		{"directory corp ldap {\ntls {\nverify off\n}\n}", "unrecognized directory tls option"},
		{"directory corp ldap {\nfactors ChallengeOMATOTP\n}", "not one a directory gives"},
		{"directory corp ldap {\ntimeout 0s\n}", "positive"},
		{"directory corp ldap {\ncolour blue\n}", "unrecognized directory option"},
	} {
		d := caddyfile.NewTestDispenser("authsession {\n" + tt.in + "\n}")
		err := new(App).UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

// TestProvisionDirectories: unusable configurations fail at provision,
// with the directory named; a good one is looked up after the users file,
// with the service password from the environment.
func TestProvisionDirectories(t *testing.T) {
	srv := ldaptest.Start(t, "")
	t.Setenv("AUTHSESSION_TEST_LDAP_PW", ldaptest.ServicePass)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	os.WriteFile(users, []byte(`{"users":[{"id":"alice","login":"alice","mail":"file@example.com"},{"id":"zed","login":"zed"}]}`), 0o600)
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	good := DirectoryConfig{
		Name: "corp", Kind: "ldap", URLs: []string{srv.URL()},
		BindDN: ldaptest.ServiceDN, BindPassword: "{env.AUTHSESSION_TEST_LDAP_PW}", BaseDN: ldaptest.PeopleDN,
		TLS: &DirectoryTLS{CAFile: srv.CAFile()},
	}
	for name, tt := range map[string]struct {
		mut  func(*DirectoryConfig)
		want string
	}{
		"bad url":       {func(c *DirectoryConfig) { c.URLs = []string{"http://x"} }, "want ldap://"},
		"no ca file":    {func(c *DirectoryConfig) { c.TLS.CAFile = filepath.Join(dir, "none.pem") }, "ca_file"},
		"not pem":       {func(c *DirectoryConfig) { c.TLS.CAFile = notPEM }, "no PEM certificate"},
		"no {login}":    {func(c *DirectoryConfig) { c.UserFilter = "(uid=alice)" }, "lacks {login}"},
		"unset env":     {func(c *DirectoryConfig) { c.BindPassword = "{env.AUTHSESSION_TEST_UNSET}" }, "environment variable"},
		"bad attribute": {func(c *DirectoryConfig) { c.Attributes = map[string]string{"title": "cn"} }, "unknown attribute"},
		"kind":          {func(c *DirectoryConfig) { c.Kind = "ad" }, "unknown kind"},
		"name taken":    {func(c *DirectoryConfig) { c.Name = "UserIdentityStore1" }, "name is taken"},
		"no name":       {func(c *DirectoryConfig) { c.Name = "" }, "name"},
	} {
		c := good
		tls := *good.TLS
		c.TLS = &tls
		tt.mut(&c)
		a := &App{UsersFile: users, IDStoreName: "UserIdentityStore1", Directories: []DirectoryConfig{c}, logger: zap.NewNop()}
		err := a.provisionOTP(caddy.NewReplacer())
		a.cleanupOTP()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", name, err, tt.want)
		}
	}
	twice := good
	a := &App{UsersFile: users, IDStoreName: "UserIdentityStore1", Directories: []DirectoryConfig{good, twice}, logger: zap.NewNop()}
	if err := a.provisionOTP(caddy.NewReplacer()); err == nil || !strings.Contains(err.Error(), "name is taken") {
		t.Errorf("two directories of one name: %v", err)
	}

	a = &App{UsersFile: users, IDStoreName: "UserIdentityStore1", Directories: []DirectoryConfig{good}, logger: zap.NewNop()}
	if err := a.provisionOTP(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	defer a.cleanupOTP()
	ctx := context.Background()
	// alice is in both: the users file answers first.
	u, ok, err := a.otp.dirs.Lookup(ctx, "alice")
	if err != nil || !ok || u.Mail != "file@example.com" || u.Store != "UserIdentityStore1" {
		t.Fatalf("alice: %+v %v %v", u, ok, err)
	}
	u, ok, err = a.otp.dirs.Lookup(ctx, "bob")
	if err != nil || !ok || u.Mail != "bob@example.com" || u.Store != "corp" {
		t.Fatalf("bob: %+v %v %v", u, ok, err)
	}
	if state.UsersFileOf(a.otp.dirs) != a.otp.users {
		t.Fatal("the users file is not found behind the directories")
	}
	// Directories alone, no users file.
	b := &App{IDStoreName: "UserIdentityStore1", Directories: []DirectoryConfig{good}, logger: zap.NewNop()}
	if err := b.provisionOTP(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	defer b.cleanupOTP()
	if u, ok, err := b.otp.dirs.CheckPassword(ctx, "carol", ldaptest.CarolPassword); err != nil || !ok || u.ID != "carol" {
		t.Fatalf("carol: %+v %v %v", u, ok, err)
	}
}
