package state

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

// Weak caller-supplied ids are refused although they are long enough and
// use enough distinct characters (issue #14, finding 6).
func TestValidateIDRefusesWeakIDs(t *testing.T) {
	for _, id := range []string{
		"00000000-0000-4000-8000-000000000000",
		"11111111-1111-4111-8111-111111111111",
		"01234567-89ab-4cde-8f01-23456789abcd", // a sequence
		"abcdabcd-abcd-4bcd-abcd-abcdabcdabcd", // a repeated block
		"96eb744b-0000-4000-8000-000000000000",
		"ABCDEFGHIJKLMNOPQRSTUV",
		"0123456789abcdefABCDEF",
		"ZYXWVUTSRQPONMLKJIHGFEDCBA",
		"ACEGIKMOQSUWYacegikmoqsuwy",
		"abcdefgh" + strings.Repeat("A", 30),
		strings.Repeat("Xy7-Qp2_", 6),
		strings.Repeat("0123456789abcdef", 3),
		strings.Repeat("0123456789", 4),
		"aaaaaaaabbbbbbbbccccccccdddddddd",
		"AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH",
	} {
		if err := ValidateID(id); err == nil {
			t.Errorf("ValidateID(%q) accepted a weak id", id)
		}
	}
}

// Random ids of every accepted alphabet and the shortest accepted length
// are never refused.
func TestValidateIDAcceptsRandomIDs(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	gen := []struct {
		name string
		make func() string
	}{
		{"base64url 16 bytes", func() string { return base64.RawURLEncoding.EncodeToString(randBytes(16)) }},
		{"base64 std 16 bytes padded", func() string { return base64.StdEncoding.EncodeToString(randBytes(16)) }},
		{"base64url 32 bytes", func() string { return base64.RawURLEncoding.EncodeToString(randBytes(32)) }},
		{"hex lower", func() string { return hex.EncodeToString(randBytes(16)) }},
		{"hex upper", func() string { return strings.ToUpper(hex.EncodeToString(randBytes(16))) }},
		{"uuid v4", randUUID},
		{"39 decimal digits", randDigits},
	}
	for _, g := range gen {
		refused := 0
		for range n {
			id := g.make()
			if ValidateID(id) != nil {
				if refused < 5 {
					t.Errorf("%s: random id %q refused (estimated %.0f bits)", g.name, id, estimatedBits(strings.TrimRight(id, "="), 6))
				}
				refused++
			}
		}
		if refused > 0 {
			t.Errorf("%s: %d of %d random ids refused", g.name, refused, n)
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randUUID() string {
	b := randBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randDigits() string {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(39), nil)
	v, _ := rand.Int(rand.Reader, max)
	s := v.String()
	return strings.Repeat("0", 39-len(s)) + s
}
