package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"unsafe"
)

// IDBytes is the number of random bytes in a server-made session id.
const IDBytes = 32

// MaxIDLength bounds caller-supplied ids, so a store key is never derived
// from an unbounded string.
const MaxIDLength = 256

// ErrBadID is returned for a caller-supplied id that is too short, too long,
// or not random-looking enough to be a bearer secret.
var ErrBadID = errors.New("session id must be a v4 UUID or at least 22 base64url characters")

// Key is how stores index a session: the SHA-256 of its id. A persisted file
// or a Redis key holds only keys, never a live cookie value.
type Key [sha256.Size]byte

// KeyOf returns the store key of a session id. The id's bytes are hashed
// in place: a []byte(id) conversion of an id longer than 32 bytes
// allocates, a copy to a stack buffer costs a fifth of the hash, and the
// gate calls KeyOf on every request. Sum256 only reads its argument.
func KeyOf(id string) Key {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(id), len(id))) // read only
}

// String returns the key in hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Short returns an 8-character prefix of the key's hex form, the most that a
// log line may show of a session.
func (k Key) Short() string { return hex.EncodeToString(k[:4]) }

// NewID returns a fresh session id: 32 bytes from crypto/rand, base64url
// without padding (43 characters).
func NewID() string {
	var b [IDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidateID checks a caller-supplied session id: a v4 UUID (122 random
// bits), or a string of at least 128 bits by its alphabet that does not
// look constant (at least 8 distinct characters): 22 base64url characters
// (6 bits each), 32 if they are all hex digits of one case (4 bits each).
// A string of decimal digits only is hex too, and takes 32 as well: one
// random 128-bit hex id in ~3.4 million has no letter, and refusing those
// would refuse random ids; read as decimal, 32 digits still carry 106
// bits, and the entropy estimate below reads them so. Up to two padding '=' are allowed at
// the end (not counted), and '+', '/' and '|' as found in some vendors'
// ids. A string in UUID form must be a v4 UUID.
//
// The entropy of what is supplied is estimated too (see estimatedBits):
// runs, sequences, repeated blocks and UUIDs of few random digits are
// refused however long they are. Random ids never are (short of odds of
// about 1e-9 for the shortest decimal ones).
func ValidateID(id string) error {
	if len(id) > MaxIDLength {
		return ErrBadID
	}
	if isUUIDShaped(id) {
		// A UUID of another version (time-based, name-based) or variant
		// has far fewer than 122 random bits.
		if isUUIDv4(id) && uuidBits(id) >= MinEstimatedBits {
			return nil
		}
		return ErrBadID
	}
	body := strings.TrimRight(id, "=")
	if len(id)-len(body) > 2 || len(body) < 22 {
		// Base64 pads with at most two '='; padding is not randomness.
		return ErrBadID
	}
	var seen [256]bool
	distinct := 0
	digits, lowerHex, upperHex := true, true, true
	for i := 0; i < len(body); i++ {
		c := body[i]
		isDigit := c >= '0' && c <= '9'
		digits = digits && isDigit
		lowerHex = lowerHex && (isDigit || c >= 'a' && c <= 'f')
		upperHex = upperHex && (isDigit || c >= 'A' && c <= 'F')
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '+', c == '/', c == '|':
			if !seen[c] {
				seen[c] = true
				distinct++
			}
		default:
			return ErrBadID
		}
	}
	perChar := 6.0
	switch {
	case digits:
		perChar = math.Log2(10)
	case lowerHex || upperHex:
		perChar = 4
	}
	switch {
	case digits && (len(body) < 32 || distinct < 5),
		!digits && distinct < 8,
		(lowerHex || upperHex) && len(body) < 32,
		estimatedBits(body, perChar) < MinEstimatedBits:
		return ErrBadID
	}
	return nil
}

// MinEstimatedBits is the least entropy, as estimatedBits measures it, of
// an accepted caller-supplied id: half of the 128 bits its length must
// promise, so that a random id is never refused (a random id loses about
// one character in its alphabet's size to the estimate).
const MinEstimatedBits = 64

// estimatedBits estimates the entropy of s, perChar bits per character,
// under the most telling of these predictions of each character from the
// ones before it: the previous step repeated (runs "aaaa", sequences
// "abcd", "0246", "zyxw"), and the character k places back (repeated
// blocks "abcabc", any period k up to half the length). A predicted
// character counts nothing, any other counts perChar. A random character
// meets one prediction with probability 1/alphabet.
func estimatedBits(s string, perChar float64) float64 {
	n := len(s)
	if n == 0 {
		return 0
	}
	// Steps: character i is predicted when it continues the step from
	// i-2 to i-1 (for i = 1, when it repeats character 0).
	fresh := 1
	for i := 1; i < n; i++ {
		step := 0
		if i >= 2 {
			step = int(s[i-1]) - int(s[i-2])
		}
		if int(s[i])-int(s[i-1]) != step {
			fresh++
		}
	}
	// Periods: character i is predicted by character i-k.
	for k := 1; k <= n/2; k++ {
		f := k
		for i := k; i < n; i++ {
			if s[i] != s[i-k] {
				f++
			}
		}
		fresh = min(fresh, f)
	}
	return float64(fresh) * perChar
}

// uuidBits estimates the entropy of the 30 random hex digits of a v4 UUID
// (all but the version and the variant digit), in any letter case.
func uuidBits(s string) float64 {
	var b [30]byte
	j := 0
	for i := range len(s) {
		switch i {
		case 8, 13, 14, 18, 19, 23:
			continue // dashes, version, variant
		}
		c := s[i]
		if c >= 'A' && c <= 'F' {
			c += 'a' - 'A'
		}
		b[j] = c
		j++
	}
	return estimatedBits(string(b[:j]), 4)
}

// isUUIDShaped reports whether s has the canonical UUID form: 36
// characters, hex digits with dashes at 8, 13, 18 and 23 (any version).
func isUUIDShaped(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range 36 {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		}
		if !isHex(c) {
			return false
		}
	}
	return true
}

// isUUIDv4 reports whether s is a canonical v4 UUID of the RFC 4122 variant
// (any letter case), such as 96eb744b-b84e-4c13-8b78-06b64ad81d94.
func isUUIDv4(s string) bool {
	if !isUUIDShaped(s) || s[14] != '4' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// NewIndex returns a short random id for OAM's sessionIndex: 12 bytes,
// base64url (16 characters), distinct from and unrelated to the session id.
func NewIndex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
