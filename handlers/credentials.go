package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BasicAuth checks HTTP Basic credentials against bcrypt hashes, with a
// cache of verified pairs per client address (as Caddy's basic_auth has
// one of pairs) so bcrypt runs once per distinct good pair and client
// rather than on every call. The cache holds only SHA-256 digests, never a
// password.
//
// Wrong credentials are throttled: failures are counted per username and
// per client address (Limiter; shared by every instance when the store is
// Redis), and once either has BasicMaxFailures in BasicFailureWindow the
// next attempts are refused (AuthThrottled) without a check. A failing pair
// is remembered, as a keyed hash only, for the window, so repeating it
// costs no bcrypt. Every bcrypt comparison runs on a bounded pool
// (bcryptSlots), so password checks cannot take every core from the gate.
type BasicAuth struct {
	credentialGuard

	users map[string][]byte
	dummy []byte

	failKey [32]byte
	fmu     sync.Mutex
	failed  map[[32]byte]time.Time // keyed hash of a failing pair → forgotten at
}

// credentialGuard is what BasicAuth and BearerAuth share: the clock, the
// limiter of wrong credentials, and the digests of the credentials verified
// per client address, whose calls skip the count (and bcrypt) unless the
// address is being refused.
type credentialGuard struct {
	// Limiter counts failures; nil counts in this process alone.
	Limiter AttemptLimiter
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.RWMutex
	verified map[[32]byte]struct{}
	local    *MemoryLimiter
}

// setup returns the time and the limiter of one check.
func (g *credentialGuard) setup() (time.Time, AttemptLimiter) {
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	if g.Limiter != nil { // set once, before any call
		return now, g.Limiter
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.local == nil {
		g.local = &MemoryLimiter{Max: BasicMaxFailures, Window: BasicFailureWindow}
	}
	return now, g.local
}

// verifiedBefore reports whether the credentials of digest d were verified
// before (d covers the client's address) and, if so, whether the address
// (addrKey) is being refused, until when: a guess from there would
// otherwise be told right (a hit) from wrong (refused) without limit.
func (g *credentialGuard) verifiedBefore(d [32]byte, lim AttemptLimiter, now time.Time, addrKey string) (hit bool, until time.Time, blocked bool) {
	g.mu.RLock()
	_, hit = g.verified[d]
	g.mu.RUnlock()
	if !hit {
		return false, time.Time{}, false
	}
	until, blocked = lim.Blocked(now, addrKey)
	return true, until, blocked
}

// remember records the credentials of digest d as verified.
func (g *credentialGuard) remember(d [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.verified == nil || len(g.verified) >= maxCachedPairs {
		g.verified = map[[32]byte]struct{}{}
	}
	g.verified[d] = struct{}{}
}

// Limits of wrong Basic credentials.
const (
	// BasicMaxFailures wrong credentials per username and per client
	// address within BasicFailureWindow; more are refused with 429.
	BasicMaxFailures   = 10
	BasicFailureWindow = 5 * time.Minute
)

// maxCachedPairs bounds the verified-pairs cache (and the failing-pairs
// cache); it is emptied when full.
const maxCachedPairs = 1024

// NewBasicAuth returns a checker for username → bcrypt hash.
func NewBasicAuth(users map[string][]byte) *BasicAuth {
	// An unknown username costs what a known one costs: a bcrypt of the
	// highest configured cost.
	cost := 0
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("authsession-dummy-password"), cost)
	b := &BasicAuth{users: users, dummy: dummy, failed: map[[32]byte]time.Time{}}
	_, _ = rand.Read(b.failKey[:])
	return b
}

// Empty reports whether no credentials are configured (every call refused).
func (b *BasicAuth) Empty() bool { return b == nil || len(b.users) == 0 }

// AuthResult is the outcome of BasicAuth.Authenticate.
type AuthResult int

// The outcomes of Authenticate.
const (
	AuthBad       AuthResult = iota // missing or wrong credentials: 401
	AuthOK                          // good credentials
	AuthThrottled                   // too many failures: 429 until the time returned
)

// Check reports whether r carries valid Basic credentials, and the user.
// A throttled request is not valid.
func (b *BasicAuth) Check(r *http.Request) (string, bool) {
	user, res, _ := b.Authenticate(r)
	return user, res == AuthOK
}

// Authenticate checks r's Basic credentials. AuthThrottled comes with the
// time the caller may try again (for Retry-After).
func (b *BasicAuth) Authenticate(r *http.Request) (string, AuthResult, time.Time) {
	user, pass, ok := r.BasicAuth()
	if !ok || b.Empty() {
		return "", AuthBad, time.Time{}
	}
	// The cache is per client address: a pair verified for one client does
	// not let another skip the count and the bcrypt, or the right guess of
	// a password in use would cost a SHA-256 and pass any limit.
	addr := AddressKey(remoteIP(r))
	digest := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + addr))
	now, lim := b.setup()
	if hit, until, blocked := b.verifiedBefore(digest, lim, now, "basic-ip:"+addr); blocked {
		return "", AuthThrottled, until
	} else if hit {
		return user, AuthOK, time.Time{}
	}
	// Count the attempt before checking it, so that parallel wrong
	// attempts check at most the limit.
	release, until, blocked := lim.Reserve(r.Context(), now, "basic-user:"+user, "basic-ip:"+addr)
	if blocked {
		return "", AuthThrottled, until
	}
	fail := b.failDigest(user, pass)
	if b.failedRecently(fail, now) {
		return "", AuthBad, time.Time{}
	}
	hash, known := b.users[user]
	if !known {
		// Spend the same time as for a known user.
		_ = bcryptCompare(r.Context(), b.dummy, pass)
		b.rememberFailure(fail, now)
		return "", AuthBad, time.Time{}
	}
	if bcryptCompare(r.Context(), hash, pass) != nil {
		b.rememberFailure(fail, now)
		return "", AuthBad, time.Time{}
	}
	release()
	b.remember(digest)
	return user, AuthOK, time.Time{}
}

// failDigest is the keyed hash under which a failing pair is remembered:
// HMAC-SHA256 with a key made at start, so the cache reveals nothing of the
// password even to someone who reads the process's memory offline.
func (b *BasicAuth) failDigest(user, pass string) [32]byte {
	m := hmac.New(sha256.New, b.failKey[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var d [32]byte
	copy(d[:], m.Sum(nil))
	return d
}

func (b *BasicAuth) failedRecently(d [32]byte, now time.Time) bool {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	until, ok := b.failed[d]
	if ok && !now.Before(until) {
		delete(b.failed, d)
		return false
	}
	return ok
}

func (b *BasicAuth) rememberFailure(d [32]byte, now time.Time) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if b.failed == nil || len(b.failed) >= maxCachedPairs {
		b.failed = map[[32]byte]time.Time{}
	}
	b.failed[d] = now.Add(BasicFailureWindow)
}

// remoteIP returns the host of r.RemoteAddr (the peer; Caddy has already
// applied its trusted-proxy rules to it).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// BearerAuth checks bearer tokens against SHA-256 hashes of the configured
// tokens, in constant time over every configured hash. Wrong tokens are
// throttled as wrong Basic credentials are: each check of a token not yet
// verified from the client's address is counted first (Limiter, per client
// address), and once the address has BasicMaxFailures in
// BasicFailureWindow its next tokens, the right one included, are refused
// unchecked (AuthThrottled). A token verified from an address is
// remembered for it (as a digest), so its calls skip the count.
type BearerAuth struct {
	credentialGuard

	hashes [][32]byte
}

// NewBearerAuth returns a checker for the given token hashes.
func NewBearerAuth(hashes [][32]byte) *BearerAuth { return &BearerAuth{hashes: hashes} }

// Empty reports whether no tokens are configured (every call refused).
func (b *BearerAuth) Empty() bool { return b == nil || len(b.hashes) == 0 }

// Check reports whether r carries one of the configured bearer tokens.
// A throttled request does not.
func (b *BearerAuth) Check(r *http.Request) bool {
	res, _ := b.Authenticate(r)
	return res == AuthOK
}

// Authenticate checks r's bearer token. AuthThrottled comes with the time
// the caller may try again (for Retry-After). A request without a bearer
// token is AuthBad and counts nothing (it guesses nothing).
func (b *BearerAuth) Authenticate(r *http.Request) (AuthResult, time.Time) {
	if b.Empty() {
		return AuthBad, time.Time{}
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return AuthBad, time.Time{}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	addr := AddressKey(remoteIP(r))
	seen := sha256.Sum256(append(sum[:], addr...))
	now, lim := b.setup()
	key := "bearer-ip:" + addr
	if hit, until, blocked := b.verifiedBefore(seen, lim, now, key); blocked {
		return AuthThrottled, until
	} else if hit {
		return AuthOK, time.Time{}
	}
	release, until, blocked := lim.Reserve(r.Context(), now, key)
	if blocked {
		return AuthThrottled, until
	}
	match := 0
	for i := range b.hashes {
		match |= subtle.ConstantTimeCompare(sum[:], b.hashes[i][:])
	}
	if match != 1 {
		return AuthBad, time.Time{} // the reservation is the failure
	}
	release()
	b.remember(seen)
	return AuthOK, time.Time{}
}
