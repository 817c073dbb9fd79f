package state

import (
	"bytes"
	"testing"
)

func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := NewSealer(NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	s := newTestSealer(t)
	for _, id := range []string{NewID(), "96eb744b-b84e-4c13-8b78-06b64ad81d94", "x"} {
		sealed := s.Seal(id)
		if len(id) > 8 && bytes.Contains(sealed, []byte(id)) {
			t.Fatalf("sealed form contains the id in the clear")
		}
		got, err := s.Open(KeyOf(id), sealed)
		if err != nil || got != id {
			t.Fatalf("Open = %q, %v; want %q", got, err, id)
		}
		if again := s.Seal(id); bytes.Equal(again, sealed) {
			t.Fatalf("sealing twice gave the same bytes: the nonce is not random")
		}
	}
}

func TestSealerRefuses(t *testing.T) {
	s := newTestSealer(t)
	other := newTestSealer(t)
	id, id2 := NewID(), NewID()
	sealed := s.Seal(id)

	tests := []struct {
		name   string
		sealer *Sealer
		key    Key
		sealed []byte
	}{
		{"wrong sealer key", other, KeyOf(id), sealed},
		{"moved to another record", s, KeyOf(id2), sealed},
		{"truncated by one byte", s, KeyOf(id), sealed[:len(sealed)-1]},
		{"truncated to the nonce", s, KeyOf(id), sealed[:12]},
		{"empty", s, KeyOf(id), nil},
		{"flipped bit", s, KeyOf(id), flip(sealed, len(sealed)/2)},
		{"flipped nonce", s, KeyOf(id), flip(sealed, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.key, tt.sealed)
			if err == nil || got != "" {
				t.Fatalf("Open = %q, %v; want an error", got, err)
			}
			if bytes.Contains([]byte(err.Error()), []byte(id)) {
				t.Fatalf("error shows the id: %v", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
	}
	if k := NewSealKey(); len(k) != SealKeySize || bytes.Equal(k, NewSealKey()) {
		t.Errorf("NewSealKey gave %d bytes or repeated itself", len(k))
	}
}
