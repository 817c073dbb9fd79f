package ldaptest

import (
	"strings"
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

// TestMemberOfIsFilledByTheOverlay checks that the groups added after
// start fill their members' memberOf (the memberof overlay runs), and that
// a member added later by a modify gets it too.
func TestMemberOfIsFilledByTheOverlay(t *testing.T) {
	s := Start(t, "")
	memberOf := func(uid string) []string {
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
			"(uid="+ldap.EscapeFilter(uid)+")", []string{"memberOf"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("search for %s: %v, %+v", uid, err, res)
		}
		return res.Entries[0].GetAttributeValues("memberOf")
	}
	ops := "cn=ops," + GroupsDN
	if got := memberOf("alice"); len(got) != 1 || !strings.EqualFold(got[0], ops) {
		t.Fatalf("alice's memberOf = %q; want [%s]", got, ops)
	}
	if got := memberOf("bob"); len(got) != 0 {
		t.Fatalf("bob's memberOf before the modify = %q; want none", got)
	}
	s.AddMember(ops, "uid=bob,"+PeopleDN)
	if got := memberOf("bob"); len(got) != 1 || !strings.EqualFold(got[0], ops) {
		t.Fatalf("bob's memberOf after the modify = %q; want [%s]", got, ops)
	}
}
