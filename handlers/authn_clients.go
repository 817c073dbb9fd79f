package handlers

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// AuthnClients checks the clientId/clientSecret pairs of the challenge
// flow's integration clients. Secrets are kept as bcrypt hashes or as
// SHA-256 hashes (64 hex digits); SHA-256 hashes are compared in constant
// time, and good bcrypt pairs are remembered by digest (as BasicAuth does)
// so that bcrypt runs once per distinct pair.
type AuthnClients struct {
	clients map[string]clientSecret
	dummy   []byte

	mu    sync.RWMutex
	cache map[[32]byte]struct{}
}

type clientSecret struct {
	bcrypt []byte
	sha256 []byte
}

// NewAuthnClients returns a checker for clientId → secret hash (bcrypt, or
// the hex SHA-256 of the secret).
func NewAuthnClients(hashes map[string]string) (*AuthnClients, error) {
	c := &AuthnClients{clients: make(map[string]clientSecret, len(hashes)), cache: map[[32]byte]struct{}{}}
	for id, h := range hashes {
		sec, err := parseSecretHash(h)
		if err != nil {
			return nil, fmt.Errorf("integration client %q: %w", id, err)
		}
		c.clients[id] = sec
	}
	// An unknown clientId costs what a known one costs: a bcrypt of the
	// highest configured cost, or, when every secret is a SHA-256, a
	// SHA-256 comparison.
	cost := 0
	for _, sec := range c.clients {
		if sec.bcrypt != nil {
			if n, err := bcrypt.Cost(sec.bcrypt); err == nil && n > cost {
				cost = n
			}
		}
	}
	if cost > 0 {
		c.dummy, _ = bcrypt.GenerateFromPassword([]byte("authsession-dummy-client-secret"), cost)
	}
	return c, nil
}

// parseSecretHash reads a bcrypt hash or a hex SHA-256.
func parseSecretHash(h string) (clientSecret, error) {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "$2") {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return clientSecret{}, fmt.Errorf("secret hash is not a valid bcrypt hash")
		}
		return clientSecret{bcrypt: []byte(h)}, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(h), "sha256:"))
	if err != nil || len(b) != sha256.Size {
		return clientSecret{}, fmt.Errorf("secret hash must be a bcrypt hash or a hex SHA-256")
	}
	return clientSecret{sha256: b}, nil
}

// dummySHA256 is compared against for an unknown clientId when every
// secret is a SHA-256.
var dummySHA256 = sha256.Sum256([]byte("authsession-dummy-client-secret"))

// Len returns the number of clients.
func (c *AuthnClients) Len() int {
	if c == nil {
		return 0
	}
	return len(c.clients)
}

// Check reports whether id and secret name a configured client.
func (c *AuthnClients) Check(id, secret string) bool {
	if c.Len() == 0 || id == "" || secret == "" {
		return false
	}
	sec, known := c.clients[id]
	if !known {
		if c.dummy != nil {
			_ = bcryptCompare(context.Background(), c.dummy, secret)
		} else {
			sum := sha256.Sum256([]byte(secret))
			_ = subtle.ConstantTimeCompare(sum[:], dummySHA256[:])
		}
		return false
	}
	if sec.sha256 != nil {
		sum := sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare(sum[:], sec.sha256) == 1
	}
	digest := sha256.Sum256([]byte(id + "\x00" + secret))
	c.mu.RLock()
	_, hit := c.cache[digest]
	c.mu.RUnlock()
	if hit {
		return true
	}
	if bcryptCompare(context.Background(), sec.bcrypt, secret) != nil {
		return false
	}
	c.mu.Lock()
	if len(c.cache) >= maxCachedPairs {
		clear(c.cache)
	}
	c.cache[digest] = struct{}{}
	c.mu.Unlock()
	return true
}
