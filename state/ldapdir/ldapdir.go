// Package ldapdir is an identity store in an LDAP directory (OpenLDAP,
// Active Directory, 389-ds...): a state.Directory whose users are found
// with a service account's search and whose passwords are checked by
// binding as the user, never by reading a hash.
//
// The service account's connections are pooled and re-dialled when they
// break; a user's bind runs on a connection of its own, closed after, so
// it never changes the identity the pool searches with. Every call is
// bounded by Config.Timeout; several URLs are tried in order (fail-over),
// starting with the last one that answered. Attributes, never passwords,
// are cached for Config.Cache. Every value put into a filter is escaped as
// RFC 4515 requires.
package ldapdir

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/authsession/caddy-authsession/state"
)

// Attributes name the directory's attributes that make a state.User.
type Attributes struct {
	// ID is the user's id, the canonical key of everything kept about
	// them (default uid; AD: sAMAccountName or objectGUID is not text,
	// use sAMAccountName).
	ID string
	// Login is the name shown as the session's loginName (default: ID).
	Login string
	// Mail is the address of email codes (default mail).
	Mail string
	// Phone is the number of SMS codes (default mobile).
	Phone string
	// Group is an attribute holding the user's group (e.g. memberOf; a
	// DN's first value is taken, cn=ops,ou=groups,... gives ops). Empty:
	// no group attribute (see Config.GroupFilter).
	Group string
	// Name is the user's display name (e.g. cn or displayName). Empty:
	// none (the login stands for it).
	Name string
}

// Config configures a Directory.
type Config struct {
	// Name is the identity store's name (a session's idStoreName).
	Name string
	// URLs are ldap:// (always upgraded with StartTLS) or ldaps:// URLs,
	// tried in order.
	URLs []string
	// BindDN and BindPassword are the service account's credentials.
	BindDN, BindPassword string
	// BaseDN is where users are searched (whole subtree).
	BaseDN string
	// UserFilter finds one user by what they typed; it must contain
	// {login}, replaced by the escaped login.
	UserFilter string
	// Attributes map the directory's attributes to a user's fields.
	Attributes Attributes
	// GroupFilter, when set, finds the user's groups below GroupBaseDN
	// (default BaseDN): {dn}, {id} and {login} are replaced by the user's
	// escaped DN, id and login; the first group's GroupAttribute (default
	// cn) is the user's group. It wins over Attributes.Group.
	GroupFilter    string
	GroupBaseDN    string
	GroupAttribute string
	// TLS configures TLS (the CA to trust, a client certificate); nil
	// means the system's roots. ServerName defaults to each URL's host.
	TLS *tls.Config
	// Timeout bounds every call, fail-over included. Default 5s.
	Timeout time.Duration
	// Cache is how long a user's attributes are kept; 0 means not at
	// all. Passwords are never cached.
	Cache time.Duration
	// Factors are the factors a directory user has when the directory
	// holds their address: ChallengeEmail with a mail, ChallengeSMS with
	// a phone. Default: both.
	Factors []string
	// PoolSize bounds the service account's connections. Default 4.
	PoolSize int
	// Now is the clock of the cache. Default time.Now.
	Now func() time.Time
}

// maxCached bounds the attribute cache; a full cache is emptied.
const maxCached = 10000

// Directory is an LDAP identity store. It is safe for concurrent use.
type Directory struct {
	cfg   Config
	urls  []*url.URL
	attrs []string

	sem  chan struct{}
	idle chan *ldap.Conn

	mu     sync.Mutex
	prefer int
	cache  map[string]cached
	closed bool
}

type cached struct {
	u       state.User
	dn      string
	expires time.Time
}

// New checks cfg and returns its Directory. It does not connect: a
// directory down at start is answered "unavailable" until it is back.
func New(cfg Config) (*Directory, error) {
	if cfg.Name == "" {
		return nil, errors.New("ldap directory: a name is required")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("ldap directory: at least one url is required")
	}
	d := &Directory{}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("ldap directory: url %q: %w", raw, err)
		}
		if (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("ldap directory: url %q: want ldap://host[:port] (StartTLS) or ldaps://host[:port]", raw)
		}
		d.urls = append(d.urls, u)
	}
	if cfg.BaseDN == "" {
		return nil, errors.New("ldap directory: base_dn is required")
	}
	for _, dn := range []string{cfg.BaseDN, cfg.GroupBaseDN, cfg.BindDN} {
		if dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			return nil, fmt.Errorf("ldap directory: %q is not a DN: %w", dn, err)
		}
	}
	if (cfg.BindDN == "") != (cfg.BindPassword == "") {
		return nil, errors.New("ldap directory: bind_dn and bind_password go together (an anonymous service bind has neither)")
	}
	if cfg.UserFilter == "" {
		cfg.UserFilter = "(uid={login})"
	}
	if !strings.Contains(cfg.UserFilter, "{login}") {
		return nil, fmt.Errorf("ldap directory: user_filter %q lacks {login}", cfg.UserFilter)
	}
	if _, err := ldap.CompileFilter(strings.ReplaceAll(cfg.UserFilter, "{login}", "x")); err != nil {
		return nil, fmt.Errorf("ldap directory: user_filter %q: %w", cfg.UserFilter, err)
	}
	if cfg.GroupFilter != "" {
		r := strings.NewReplacer("{dn}", "x", "{id}", "x", "{login}", "x")
		if _, err := ldap.CompileFilter(r.Replace(cfg.GroupFilter)); err != nil {
			return nil, fmt.Errorf("ldap directory: group_filter %q: %w", cfg.GroupFilter, err)
		}
	}
	a := &cfg.Attributes
	if a.ID == "" {
		a.ID = "uid"
	}
	if a.Login == "" {
		a.Login = a.ID
	}
	if a.Mail == "" {
		a.Mail = "mail"
	}
	if a.Phone == "" {
		a.Phone = "mobile"
	}
	if cfg.GroupBaseDN == "" {
		cfg.GroupBaseDN = cfg.BaseDN
	}
	if cfg.GroupAttribute == "" {
		cfg.GroupAttribute = "cn"
	}
	if cfg.Factors == nil {
		cfg.Factors = []string{state.FactorEmail, state.FactorSMS}
	}
	for _, f := range cfg.Factors {
		if f != state.FactorEmail && f != state.FactorSMS {
			return nil, fmt.Errorf("ldap directory: factor %q: a directory gives %s and %s", f, state.FactorEmail, state.FactorSMS)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Cache < 0 {
		return nil, errors.New("ldap directory: cache must not be negative")
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d.cfg = cfg
	d.attrs = []string{a.ID, a.Login, a.Mail, a.Phone}
	if a.Group != "" && cfg.GroupFilter == "" {
		d.attrs = append(d.attrs, a.Group)
	}
	if a.Name != "" {
		d.attrs = append(d.attrs, a.Name)
	}
	d.sem = make(chan struct{}, cfg.PoolSize)
	d.idle = make(chan *ldap.Conn, cfg.PoolSize)
	d.cache = map[string]cached{}
	return d, nil
}

// Name returns the identity store's name.
func (d *Directory) Name() string { return d.cfg.Name }

// Close closes the pooled connections. Calls after Close answer
// "unavailable".
func (d *Directory) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	for {
		select {
		case c := <-d.idle:
			_ = c.Close()
		default:
			return nil
		}
	}
}

// unavailable wraps err as the directory's "cannot answer".
func (d *Directory) unavailable(err error) error {
	return &unavailableError{name: d.cfg.Name, err: err}
}

// unavailableError is a directory's "cannot answer": it is
// state.ErrUnavailable and the cause.
type unavailableError struct {
	name string
	err  error
}

func (e *unavailableError) Error() string {
	return "ldap directory " + e.name + " unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{state.ErrUnavailable, e.err} }

// Lookup finds the user whose filter matches idOrLogin. A name that is
// not one (control characters, empty) is nobody, without a query.
func (d *Directory) Lookup(ctx context.Context, idOrLogin string) (state.User, bool, error) {
	c, ok, err := d.find(ctx, idOrLogin)
	return c.u, ok, err
}

// CheckPassword finds login and binds as them with password on a
// connection of its own. An empty password is refused before any bind (an
// LDAP bind without a password is an anonymous bind, which succeeds).
func (d *Directory) CheckPassword(ctx context.Context, login, password string) (state.User, bool, error) {
	if password == "" {
		return state.User{}, false, nil
	}
	c, ok, err := d.find(ctx, login)
	if err != nil {
		return state.User{}, false, err
	}
	dn := c.dn
	if !ok {
		// An unknown login costs a bind too, so its answer takes about
		// as long as a wrong password's.
		var b [16]byte
		_, _ = rand.Read(b[:])
		dn = "cn=authsession-no-such-user-" + hex.EncodeToString(b[:]) + "," + d.cfg.BaseDN
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	conn, err := d.dial(ctx)
	if err != nil {
		return state.User{}, false, d.unavailable(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	err = conn.Bind(dn, password)
	switch {
	case err == nil && ok:
		return c.u, true, nil
	case err == nil:
		return state.User{}, false, nil
	case refusedBind(err):
		return state.User{}, false, nil
	default:
		return state.User{}, false, d.unavailable(err)
	}
}

// refusedBind reports whether err is the server's "these credentials do
// not sign in" (wrong password, no such entry, account disabled or locked)
// rather than a fault.
func refusedBind(err error) bool {
	for _, code := range []uint16{
		ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
		ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax,
		ldap.LDAPResultConstraintViolation, ldap.LDAPResultUnwillingToPerform,
	} {
		if ldap.IsErrorWithCode(err, code) {
			return true
		}
	}
	return false
}

// find returns the cached or searched user named name.
func (d *Directory) find(ctx context.Context, name string) (cached, bool, error) {
	if strings.TrimSpace(name) == "" || state.ValidateUserName(name) != nil {
		return cached{}, false, nil
	}
	now := d.cfg.Now()
	if d.cfg.Cache > 0 {
		d.mu.Lock()
		c, ok := d.cache[name]
		d.mu.Unlock()
		if ok && now.Before(c.expires) {
			c.u.Factors = slices.Clone(c.u.Factors)
			return c, true, nil
		}
	}
	c, ok, err := d.search(ctx, name)
	if err != nil || !ok {
		return cached{}, ok, err
	}
	if d.cfg.Cache > 0 {
		c.expires = now.Add(d.cfg.Cache)
		d.mu.Lock()
		if len(d.cache) >= maxCached {
			clear(d.cache)
		}
		d.cache[name] = c
		d.mu.Unlock()
		c.u.Factors = slices.Clone(c.u.Factors)
	}
	return c, true, nil
}

// search looks name up with the service account.
func (d *Directory) search(ctx context.Context, name string) (cached, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		conn, pooled, err := d.get(ctx)
		if err != nil {
			return cached{}, false, d.unavailable(err)
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		c, ok, err := d.searchOn(conn, name)
		if stop() && err == nil {
			d.put(conn, true)
			return c, ok, nil
		}
		d.put(conn, false)
		if err == nil {
			err = ctx.Err()
		}
		// A pooled connection the server dropped while it was idle fails
		// on its first use: one more try, on a new connection.
		if pooled && attempt == 0 && ctx.Err() == nil && ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
			continue
		}
		return cached{}, false, d.unavailable(err)
	}
}

func (d *Directory) searchOn(conn *ldap.Conn, name string) (cached, bool, error) {
	a := d.cfg.Attributes
	filter := strings.ReplaceAll(d.cfg.UserFilter, "{login}", ldap.EscapeFilter(name))
	res, err := conn.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, 0, false, filter, d.attrs, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		// Two entries match (an ambiguous filter signs nobody in), or
		// the base is gone.
		return cached{}, false, nil
	}
	if err != nil {
		return cached{}, false, err
	}
	if len(res.Entries) != 1 {
		return cached{}, false, nil
	}
	e := res.Entries[0]
	u := state.User{
		ID: e.GetAttributeValue(a.ID), Login: e.GetAttributeValue(a.Login),
		Mail: e.GetAttributeValue(a.Mail), Phone: e.GetAttributeValue(a.Phone),
		Store: d.cfg.Name,
	}
	if a.Name != "" {
		u.Name = e.GetAttributeValue(a.Name)
		if state.ValidateUserName(u.Name) != nil {
			u.Name = ""
		}
	}
	if u.ID == "" || state.ValidateUserName(u.ID) != nil {
		return cached{}, false, nil
	}
	if u.Login == "" || state.ValidateUserName(u.Login) != nil {
		u.Login = u.ID
	}
	if a.Group != "" && d.cfg.GroupFilter == "" {
		u.Group = groupName(e.GetAttributeValue(a.Group))
	}
	if d.cfg.GroupFilter != "" {
		r := strings.NewReplacer("{dn}", ldap.EscapeFilter(e.DN), "{id}", ldap.EscapeFilter(u.ID), "{login}", ldap.EscapeFilter(u.Login))
		gs, err := conn.Search(ldap.NewSearchRequest(d.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, r.Replace(d.cfg.GroupFilter), []string{d.cfg.GroupAttribute}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return cached{}, false, err
		}
		if gs != nil {
			names := make([]string, 0, len(gs.Entries))
			for _, g := range gs.Entries {
				if v := g.GetAttributeValue(d.cfg.GroupAttribute); v != "" {
					names = append(names, groupName(v))
				}
			}
			if len(names) > 0 {
				slices.Sort(names) // one answer whatever order the server returns
				u.Group = names[0]
			}
		}
	}
	if state.ValidateUserName(u.Group) != nil {
		u.Group = ""
	}
	for _, f := range d.cfg.Factors {
		if (f == state.FactorEmail && u.Mail != "") || (f == state.FactorSMS && u.Phone != "") {
			u.Factors = append(u.Factors, f)
		}
	}
	return cached{u: u, dn: e.DN}, true, nil
}

// groupName returns the first value of v when it is a DN (memberOf's
// cn=ops,ou=groups,dc=example,dc=com gives ops), else v.
func groupName(v string) string {
	if !strings.Contains(v, "=") {
		return v
	}
	dn, err := ldap.ParseDN(v)
	if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) == 0 {
		return v
	}
	return dn.RDNs[0].Attributes[0].Value
}

// get returns a pooled service connection (pooled true), or dials and
// binds a new one when none is idle.
func (d *Directory) get(ctx context.Context) (conn *ldap.Conn, pooled bool, err error) {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("no free connection: %w", ctx.Err())
	}
	for {
		select {
		case c := <-d.idle:
			if !c.IsClosing() {
				return c, true, nil
			}
			_ = c.Close()
			continue
		default:
		}
		break
	}
	c, err := d.dial(ctx)
	if err == nil && d.cfg.BindDN != "" {
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		err = c.Bind(d.cfg.BindDN, d.cfg.BindPassword)
		stop()
		if err != nil {
			_ = c.Close()
			err = fmt.Errorf("service bind as %s: %w", d.cfg.BindDN, err)
		}
	}
	if err != nil {
		<-d.sem
		return nil, false, err
	}
	return c, false, nil
}

// put returns c to the pool, or closes it when it is not to be reused.
func (d *Directory) put(c *ldap.Conn, reuse bool) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if reuse && !closed && !c.IsClosing() {
		select {
		case d.idle <- c:
			<-d.sem
			return
		default:
		}
	}
	_ = c.Close()
	<-d.sem
}

// dial connects to the first URL that answers, starting with the one that
// answered last, and secures the connection (ldaps, or StartTLS).
func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	d.mu.Lock()
	first, closed := d.prefer, d.closed
	d.mu.Unlock()
	if closed {
		return nil, errors.New("closed")
	}
	var errs []error
	for i := range d.urls {
		n := (first + i) % len(d.urls)
		c, err := d.dialOne(ctx, d.urls[n])
		if err == nil {
			d.mu.Lock()
			d.prefer = n
			d.mu.Unlock()
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", d.urls[n].Redacted(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d *Directory) dialOne(ctx context.Context, u *url.URL) (*ldap.Conn, error) {
	deadline, _ := ctx.Deadline()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.cfg.TLS != nil {
		tc = d.cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	dialer := &net.Dialer{Deadline: deadline}
	c, err := ldap.DialURL(u.String(), ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(d.cfg.Timeout)
	if u.Scheme == "ldap" {
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		err := c.StartTLS(tc)
		if !stop() && err == nil {
			err = ctx.Err()
		}
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	return c, nil
}
