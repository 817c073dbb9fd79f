package ldaptest

import (
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// entry is one LDIF record: its DN and its attributes in order.
type entry struct {
	dn    string
	attrs []ldap.Attribute
}

// splitGroups splits ldif into the records slapadd loads offline and the
// groups (records of objectClass groupOfNames) to add once the server
// runs. Only the simple LDIF the tests write is understood: records
// separated by blank lines, one "name: value" a line, no continuations,
// no base64.
func splitGroups(ldif string) (offline string, groups []entry) {
	var keep []string
	for rec := range strings.SplitSeq(strings.ReplaceAll(ldif, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(rec) == "" {
			continue
		}
		e, isGroup := parseRecord(rec)
		if isGroup {
			groups = append(groups, e)
			continue
		}
		keep = append(keep, strings.Trim(rec, "\n"))
	}
	if len(keep) == 0 {
		return "", groups
	}
	return strings.Join(keep, "\n\n") + "\n", groups
}

// parseRecord reads one LDIF record and reports whether it is a group.
func parseRecord(rec string) (entry, bool) {
	var e entry
	group := false
	for line := range strings.SplitSeq(rec, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		value = strings.TrimSpace(value)
		if strings.EqualFold(name, "dn") {
			e.dn = value
			continue
		}
		if strings.EqualFold(name, "objectClass") && strings.EqualFold(value, "groupOfNames") {
			group = true
		}
		if n := len(e.attrs); n > 0 && strings.EqualFold(e.attrs[n-1].Type, name) {
			e.attrs[n-1].Vals = append(e.attrs[n-1].Vals, value)
			continue
		}
		e.attrs = append(e.attrs, ldap.Attribute{Type: name, Vals: []string{value}})
	}
	return e, group
}

// addLive adds the groups over LDAP as the rootdn: the memberof overlay
// then writes memberOf into each member's entry.
func (s *Server) addLive(groups []entry) {
	s.t.Helper()
	c := s.rootConn()
	defer c.Close()
	for _, g := range groups {
		req := ldap.NewAddRequest(g.dn, nil)
		for _, a := range g.attrs {
			req.Attribute(a.Type, a.Vals)
		}
		if err := c.Add(req); err != nil {
			s.t.Fatalf("ldaptest: adding group %s: %v", g.dn, err)
		}
	}
}

// AddMember adds memberDN to the group groupDN (a live LDAP modify as the
// rootdn, which the memberof overlay answers by adding groupDN to the
// member's memberOf).
func (s *Server) AddMember(groupDN, memberDN string) {
	s.t.Helper()
	c := s.rootConn()
	defer c.Close()
	req := ldap.NewModifyRequest(groupDN, nil)
	req.Add("member", []string{memberDN})
	if err := c.Modify(req); err != nil {
		s.t.Fatalf("ldaptest: adding %s to %s: %v", memberDN, groupDN, err)
	}
}

// rootConn returns a connection bound as the rootdn over StartTLS.
func (s *Server) rootConn() *ldap.Conn {
	s.t.Helper()
	c, err := ldap.DialURL(s.URL())
	if err != nil {
		s.t.Fatalf("ldaptest: dialling %s: %v", s.URL(), err)
	}
	if err := c.StartTLS(s.TLSConfig()); err != nil {
		c.Close()
		s.t.Fatalf("ldaptest: starttls: %v", err)
	}
	if err := c.Bind(RootDN, RootPass); err != nil {
		c.Close()
		s.t.Fatalf("ldaptest: bind as %s: %v", RootDN, err)
	}
	return c
}
