package state

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for range n {
		id := NewID()
		if len(id) != 43 {
			t.Fatalf("NewID() = %q: %d characters, want 43", id, len(id))
		}
		if strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("NewID() = %q has characters outside base64url", id)
		}
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != IDBytes {
			t.Fatalf("NewID() = %q decodes to %d bytes, %v", id, len(b), err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		if err := ValidateID(id); err != nil {
			t.Fatalf("ValidateID(NewID()) = %v for %q", err, id)
		}
	}
}

func TestNewIndex(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		x := NewIndex()
		if len(x) != 16 || seen[x] {
			t.Fatalf("NewIndex() = %q (len %d, seen %v)", x, len(x), seen[x])
		}
		seen[x] = true
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"server-made", "q3V1mZ8rT0aX7cYbN2pLk9sDfGh4jWe6uIo5Ry1tQvA", true},
		{"uuid v4", "96eb744b-b84e-4c13-8b78-06b64ad81d94", true},
		{"uuid v4 upper case", "96EB744B-B84E-4C13-AB78-06B64AD81D94", true},
		{"uuid v4 variant 9", "96eb744b-b84e-4c13-9b78-06b64ad81d94", true},
		{"22 base64url chars", "aZ09-_bY18cX27dW36eV45", true},
		{"std base64 with padding", "q3V1mZ8rT0aX7cYb+2pL/w==", true},
		{"vendor id with pipe", "abcdEFGH1234|ijklMNOP5678", true},
		{"uuid v1", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", false},
		{"uuid v3", "6fa459ea-ee8a-3ca4-894e-db77e160355e", false},
		{"uuid v5", "886313e1-3b8a-5372-9b90-0c9aee199e5d", false},
		{"uuid v7", "01890a5d-ac96-774b-bcce-b302099a8057", false},
		{"uuid v4 wrong variant", "96eb744b-b84e-4c13-cb78-06b64ad81d94", false},
		{"nil uuid", "00000000-0000-0000-0000-000000000000", false},
		{"32 hex digits", "96eb744bb84e4c138b7806b64ad81d94", true},
		{"32 upper-case hex digits", "96EB744BB84E4C138B7806B64AD81D94", true},
		{"31 hex digits (124 bits)", "96eb744bb84e4c138b7806b64ad81d9", false},
		{"22 hex digits (88 bits)", "96eb744bb84e4c138b7806", false},
		{"mixed-case hex counts as base64url", "96eB744bb84E4c138b7806", true},
		{"39 decimal digits", "350925014378968030336126287914415171821", true},
		{"38 decimal digits (126 bits; 152 as hex)", "35092501437896803033612628791441517182", true},
		{"32 hex digits without a letter (issue #16 CI: refused 1 random hex id in ~3.4 million)", "84982622770972135662622769341834", true},
		{"31 decimal digits", "3509250143789680303361262879144", false},
		{"a counting run of 38 digits", "12345678901234567890123456789012345678", false},
		{"empty", "", false},
		{"21 chars", "aZ09-_bY18cX27dW36eV4", false},
		{"too long", strings.Repeat("aZ09-_bY18cX27dW36eV45", 12), false},
		{"exactly the maximum", "xbQ--m3rFPY7IWlMjcmrJD_OyE13ejAqVidMpK-tvGQt_29dF8mns5K7ZU5tt2nGeRiY2oGp4-on8Pz7zASEnxlNiQAYDMxCSUF-oSU9Pr6mOMgW-uU1is7pGlRWJyjvR9qBeZoKbZW0quyfzrqvnxz1-TK_7sKFgOW-0OLfWn2oymajvp2cOWKb3Gq3N2vOUzyaElo_jqjSour1lAdONLZ0OYuoAMhTqUyvYvQjtoSQglIAhGnVafyUeds1Dxrk", true},
		{"repeated block at the maximum", strings.Repeat("aZ09-_bY", 32), false},
		{"constant", strings.Repeat("a", 43), false},
		{"seven distinct characters", strings.Repeat("abcdefg", 6), false},
		{"space", "aZ09-_bY18cX 27dW36eV45", false},
		{"dot", "aZ09-_bY18cX.27dW36eV45", false},
		{"percent", "aZ09-_bY18cX%27dW36eV45", false},
		{"newline", "aZ09-_bY18cX27dW36eV45\n", false},
		{"non-ascii", "aZ09-_bY18cX27dW36eV45é", false},
		{"nul", "aZ09-_bY18cX27dW36eV45\x00", false},
		{"data after padding", "aZ09-_bY18cX27dW36eV45=a", false},
		{"three padding characters", "aZ09-_bY18cX27dW36eV45===", false},
		{"padding makes up the length", "abcdefgh" + strings.Repeat("=", 14), false},
		{"padding only", strings.Repeat("=", 24), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && err != ErrBadID {
				t.Fatalf("error = %v, want ErrBadID", err)
			}
		})
	}
}

func TestKey(t *testing.T) {
	id := "q3V1mZ8rT0aX7cYbN2pLk9sDfGh4jWe6uIo5Ry1tQvA"
	k := KeyOf(id)
	if k != KeyOf(id) || k == KeyOf(id+"x") {
		t.Fatal("KeyOf is not a function of the id")
	}
	if len(k.String()) != 64 || !strings.HasPrefix(k.String(), k.Short()) || len(k.Short()) != 8 {
		t.Fatalf("String %q / Short %q", k.String(), k.Short())
	}
	if strings.Contains(k.String(), id) {
		t.Fatal("the key shows the id")
	}
}
