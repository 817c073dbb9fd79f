package ldaptest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// TestServerAnswersOverStartTLS binds as the service account and as a user
// over StartTLS with the test CA, and finds the user; a stopped server
// refuses connections and a restarted one answers again.
func TestServerAnswersOverStartTLS(t *testing.T) {
	s := Start(t, "")
	check := func() {
		t.Helper()
		c, err := ldap.DialURL(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(s.TLSConfig()); err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(ServiceDN, ServicePass); err != nil {
			t.Fatal(err)
		}
		res, err := c.Search(ldap.NewSearchRequest(PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
			"(uid=alice)", []string{"mail", "mobile"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("mail") != "alice@example.com" {
			t.Fatalf("search for alice: %+v", res.Entries)
		}
		if err := c.Bind("uid=alice,"+PeopleDN, AlicePassword); err != nil {
			t.Fatalf("alice's bind: %v", err)
		}
		if err := c.Bind("uid=alice,"+PeopleDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("alice's bind with a wrong password: %v", err)
		}
	}
	check()
	s.Stop()
	if c, err := ldap.DialURL(s.URL()); err == nil {
		c.Close()
		t.Fatal("a stopped server accepted a connection")
	}
	s.Restart()
	check()
}
