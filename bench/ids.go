package bench

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// SessionID returns the i-th benchmark session id: 43 base64url characters
// derived from i, so that the preload client, the stand-in auth service and
// wrk agree on them without passing secrets around. They are predictable on
// purpose and must never be used outside benchmarks.
func SessionID(i int) string {
	sum := sha256.Sum256([]byte("authsession-bench/" + strconv.Itoa(i)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// UserID returns the user of the i-th benchmark session: one session per
// user, the common case (and the costliest for the per-user index).
func UserID(i int) string { return "user" + strconv.Itoa(i) }
