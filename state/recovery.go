package state

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"
)

// RecoveryCodeCount is how many recovery codes a set holds.
const RecoveryCodeCount = 10

// recoveryAlphabet spells the codes: lower-case base32 without padding,
// 16 characters (80 bits) per code.
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns a fresh set of RecoveryCodeCount codes, 80 bits
// each from crypto/rand, spelled xxxx-xxxx-xxxx-xxxx, and their hashes to
// keep (see SetRecoveryCodes). The codes are shown once and never stored.
func NewRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCodeCount {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			panic("authsession: crypto/rand failed: " + err.Error())
		}
		s := recoveryEncoding.EncodeToString(b)
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		codes = append(codes, code)
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return codes, hashes
}

// HashRecoveryCode returns the hash kept for code: SHA-256 (hex) of its
// normal form (lower case, without separators). The codes have 80 bits of
// entropy, so a plain hash is enough.
func HashRecoveryCode(code string) string {
	sum := sha256.Sum256([]byte(normalRecoveryCode(code)))
	return hex.EncodeToString(sum[:])
}

func normalRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		if r != '-' && r != ' ' && r != '\t' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SetRecoveryCodes replaces the user's recovery codes by the set of
// hashes (the old set is revoked).
func (u *UserState) SetRecoveryCodes(hashes []string, now time.Time) {
	u.Recovery = append([]string(nil), hashes...)
	u.RecoveryAt = now
	if len(hashes) == 0 {
		u.Recovery, u.RecoveryAt = nil, time.Time{}
	}
}

// UseRecoveryCode consumes code if it is one of the user's unused codes
// and reports whether it was. Every kept hash is compared, in constant
// time.
func (u *UserState) UseRecoveryCode(code string) bool {
	n := normalRecoveryCode(code)
	if len(n) != 16 {
		return false
	}
	want := HashRecoveryCode(n)
	found := -1
	for i, h := range u.Recovery {
		if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return false
	}
	u.Recovery = append(u.Recovery[:found:found], u.Recovery[found+1:]...)
	if len(u.Recovery) == 0 {
		u.Recovery = nil
	}
	return true
}
