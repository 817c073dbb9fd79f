package state

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestKeyOfIsSHA256OfTheID(t *testing.T) {
	for _, n := range []int{0, 1, 32, 43, MaxIDLength, MaxIDLength + 1, 4 * MaxIDLength} {
		id := strings.Repeat("a", n)
		if got, want := KeyOf(id), Key(sha256.Sum256([]byte(id))); got != want {
			t.Errorf("KeyOf of a %d-byte id = %s, want %s", n, got, want)
		}
	}
}

func TestKeyOfDoesNotAllocate(t *testing.T) {
	id := NewID()
	if n := testing.AllocsPerRun(100, func() { _ = KeyOf(id) }); n != 0 {
		t.Errorf("KeyOf allocates %v times per call, want 0", n)
	}
}
