package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// BasicAuth checks HTTP Basic credentials against bcrypt hashes, with a
// cache of verified pairs (as Caddy's basic_auth does) so bcrypt runs once
// per distinct good pair rather than on every call. The cache holds only
// SHA-256 digests of the pairs, never a password.
type BasicAuth struct {
	users map[string][]byte
	dummy []byte

	mu    sync.RWMutex
	cache map[[32]byte]struct{}
}

// maxCachedPairs bounds the verified-pairs cache; it is emptied when full.
const maxCachedPairs = 1024

// NewBasicAuth returns a checker for username → bcrypt hash.
func NewBasicAuth(users map[string][]byte) *BasicAuth {
	dummy, _ := bcrypt.GenerateFromPassword([]byte("authsession-dummy-password"), bcrypt.DefaultCost)
	return &BasicAuth{users: users, dummy: dummy, cache: make(map[[32]byte]struct{})}
}

// Empty reports whether no credentials are configured (every call refused).
func (b *BasicAuth) Empty() bool { return b == nil || len(b.users) == 0 }

// Check reports whether r carries valid Basic credentials, and the user.
func (b *BasicAuth) Check(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || b.Empty() {
		return "", false
	}
	digest := sha256.Sum256([]byte(user + "\x00" + pass))
	b.mu.RLock()
	_, hit := b.cache[digest]
	b.mu.RUnlock()
	if hit {
		return user, true
	}
	hash, known := b.users[user]
	if !known {
		// Spend the same time as for a known user.
		_ = bcrypt.CompareHashAndPassword(b.dummy, []byte(pass))
		return "", false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return "", false
	}
	b.mu.Lock()
	if len(b.cache) >= maxCachedPairs {
		clear(b.cache)
	}
	b.cache[digest] = struct{}{}
	b.mu.Unlock()
	return user, true
}

// BearerAuth checks bearer tokens against SHA-256 hashes of the configured
// tokens, in constant time over every configured hash.
type BearerAuth struct{ hashes [][32]byte }

// NewBearerAuth returns a checker for the given token hashes.
func NewBearerAuth(hashes [][32]byte) *BearerAuth { return &BearerAuth{hashes: hashes} }

// Empty reports whether no tokens are configured (every call refused).
func (b *BearerAuth) Empty() bool { return b == nil || len(b.hashes) == 0 }

// Check reports whether r carries one of the configured bearer tokens.
func (b *BearerAuth) Check(r *http.Request) bool {
	if b.Empty() {
		return false
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	match := 0
	for i := range b.hashes {
		match |= subtle.ConstantTimeCompare(sum[:], b.hashes[i][:])
	}
	return match == 1
}
