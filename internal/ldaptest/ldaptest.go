// Package ldaptest starts a throwaway OpenLDAP slapd for tests: a config of
// its own (never the system's), an mdb database loaded offline with
// slapadd from a small LDIF (its groups, groupOfNames entries, are added
// once the server runs, through LDAP as the rootdn, so that the memberof
// overlay fills their members' memberOf as a production server's does), a
// test CA and a server certificate for
// StartTLS, on a free loopback port in a directory under t.TempDir(). The
// server is killed when the test ends; Stop and Restart let fault tests
// take it away and bring it back on the same port.
//
// When slapd (or slapadd) is not installed the test is skipped with a
// message that says so; every other failure to start fails the test. Only
// tests import it.
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

// startTimeout bounds the wait for slapd to listen; a loaded two-core
// machine meets it.
const startTimeout = 30 * time.Second

// The directory every server holds: its suffix and the service account the
// code under test binds as.
const (
	Suffix      = "dc=example,dc=com"
	PeopleDN    = "ou=people," + Suffix
	GroupsDN    = "ou=groups," + Suffix
	ServiceDN   = "cn=authsession,ou=svc," + Suffix
	ServicePass = "svc-secret-4711"
	// RootDN and RootPass are the database's administrator, who adds the
	// groups after start.
	RootDN         = "cn=admin," + Suffix
	RootPass       = "root-secret-0815"
	AlicePassword  = "alice-pass-1"
	BobPassword    = "bob-pass-2"
	CarolPassword  = "carol-pass-3"
	defaultLDIFFmt = `dn: %[1]s
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=svc,%[1]s
objectClass: organizationalUnit
ou: svc

dn: %[2]s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: authsession
userPassword: %[3]s

dn: ou=people,%[1]s
objectClass: organizationalUnit
ou: people

dn: ou=groups,%[1]s
objectClass: organizationalUnit
ou: groups

`
)

// People is the default LDIF's users (below PeopleDN) and groups (below
// GroupsDN): alice has mail and mobile and is in group ops (so her entry's
// memberOf is cn=ops,ou=groups,dc=example,dc=com); bob has mail only;
// carol has neither. Their passwords are the *Password constants.
const People = `dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com
mobile: +15550001111
userPassword: alice-pass-1

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@example.com
userPassword: bob-pass-2

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol Example
sn: Example
userPassword: carol-pass-3

dn: cn=ops,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: ops
member: uid=alice,ou=people,dc=example,dc=com
`

// Server is one slapd process.
type Server struct {
	t      testing.TB
	bin    string
	dir    string
	port   int
	cmd    *exec.Cmd
	ca     []byte
	exited chan struct{}
}

// Start starts slapd for t holding the service account, ou=people and
// ou=groups under Suffix, and the entries of ldif (People when empty;
// entries must lie below PeopleDN or GroupsDN).
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	bin := tool(t, "slapd")
	slapadd := tool(t, "slapadd")
	if ldif == "" {
		ldif = People
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: testkit.FreePort()}
	s.writeCerts()
	conf := s.config()
	if err := os.WriteFile(filepath.Join(s.dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	offline, groups := splitGroups(ldif)
	data := fmt.Sprintf(defaultLDIFFmt, Suffix, ServiceDN, ServicePass) + offline
	if err := os.WriteFile(filepath.Join(s.dir, "data.ldif"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(slapadd, "-q", "-f", filepath.Join(s.dir, "slapd.conf"), "-l", filepath.Join(s.dir, "data.ldif")).CombinedOutput()
	if err != nil {
		t.Fatalf("ldaptest: slapadd: %v\n%s", err, out)
	}
	s.run()
	t.Cleanup(s.Stop)
	if len(groups) > 0 {
		s.addLive(groups)
	}
	return s
}

// tool returns the path of an OpenLDAP binary, or skips t when it is
// missing (Debian keeps them in /usr/sbin, often outside PATH).
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Skipf("SKIPPED: %s not installed (apt-get install -y slapd; .ci/run installs it): this test needs a real OpenLDAP server", name)
	return ""
}

// URL returns the server's ldap:// URL (StartTLS with the test CA).
func (s *Server) URL() string { return "ldap://127.0.0.1:" + strconv.Itoa(s.port) }

// CAFile returns the path of the PEM file of the CA that signed the
// server's certificate.
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ca.pem") }

// CAPool returns a pool holding the test CA.
func (s *Server) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.ca)
	return p
}

// TLSConfig returns a client TLS config trusting the test CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CAPool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func (s *Server) config() string {
	d := s.dir
	var b strings.Builder
	for _, sc := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include /etc/ldap/schema/%s.schema\n", sc)
	}
	fmt.Fprintf(&b, `pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
security tls=1
database mdb
maxsize 16777216
suffix "%[2]s"
rootdn "%[4]s"
rootpw "%[5]s"
directory %[1]s/db
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="%[3]s" read
  by self read
  by * none
`, d, Suffix, ServiceDN, RootDN, RootPass)
	return b.String()
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost, valid for a day.
func (s *Server) writeCerts() {
	s.t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ldaptest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		s.t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		s.t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		s.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, b := range map[string][]byte{
		"ca.pem":     s.ca,
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// run starts slapd in the foreground (-d 0) and waits until it accepts
// connections.
func (s *Server) run() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-h", s.URL()+"/", "-f", filepath.Join(s.dir, "slapd.conf"), "-d", "0")
	log, err := os.OpenFile(filepath.Join(s.dir, "slapd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close() // the child has its own descriptor
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("ldaptest: starting %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	cmd := s.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	s.exited = exited
	_, ok := testkit.WaitFor(startTimeout, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	select {
	case <-exited:
		ok = false
	default:
	}
	if !ok {
		out, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
		s.Stop()
		s.t.Fatalf("ldaptest: slapd on %s did not start within %v:\n%s", s.URL(), startTimeout, out)
	}
}

// Stop kills slapd and waits for it to exit. It does nothing if the server
// is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server again, on the same port with the same
// data, and waits until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("ldaptest: Restart of %s, which is running", s.URL())
	}
	s.run()
}

// Freeze suspends slapd (SIGSTOP): connections stay open but nothing
// answers, as with a hung server. Thaw resumes it.
func (s *Server) Freeze() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	// The signal is delivered asynchronously: wait until every thread
	// is stopped, so that the test's next request meets a hung server.
	stat := "/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/task"
	if _, ok := testkit.WaitFor(5*time.Second, func() bool {
		tasks, err := os.ReadDir(stat)
		if err != nil {
			return false
		}
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(stat, t.Name(), "stat"))
			if err != nil {
				return false
			}
			// The state follows the command name in parentheses.
			i := strings.LastIndexByte(string(b), ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return false
			}
		}
		return true
	}); !ok {
		s.t.Fatalf("ldaptest: slapd on %s did not stop", s.URL())
	}
}

// Thaw resumes a frozen server.
func (s *Server) Thaw() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }
