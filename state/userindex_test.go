package state

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestEncodedUserID checks that the UserID read in place from an encoding
// is the one AppendSession wrote, with and without a sealed id, for empty
// and long user keys, and that a truncated or foreign encoding is refused
// rather than misread.
func TestEncodedUserID(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sealer, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sealer *Sealer
		user   string
	}{
		{"sealed", sealer, "alice"},
		{"unsealed", nil, "bob"},
		{"empty user", sealer, ""},
		{"long user", sealer, strings.Repeat("ü", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSession(NewID(), tc.sealer, now, time.Hour, time.Minute)
			s.UserID = tc.user
			s.LoginName = "login-" + tc.user
			enc := []byte(storedForm(AppendSession(nil, s)))
			got, ok := encodedUserID(enc)
			if !ok || string(got) != tc.user {
				t.Fatalf("encodedUserID = %q, %v; want %q", got, ok, tc.user)
			}
			// Every prefix that ends before the UserID does is refused.
			end := storedFieldsAt + len(appendBytes(nil, s.SealedID)) + len(appendString(nil, s.Index)) + len(appendString(nil, s.UserID))
			for n := range end {
				if got, ok := encodedUserID(enc[:n]); ok {
					t.Fatalf("encodedUserID of the first %d of %d bytes = %q, ok", n, end, got)
				}
			}
			if got, ok := encodedUserID(enc[:end]); !ok || string(got) != tc.user {
				t.Fatalf("encodedUserID of the first %d bytes = %q, %v", end, got, ok)
			}
			bad := bytes.Clone(enc)
			bad[0] = sessionCodecVersion + 1
			if _, ok := encodedUserID(bad); ok {
				t.Fatal("an encoding of another version was read")
			}
		})
	}
}

// TestMemorySweepKeepsIndexAndCache checks what the sweeper does to the
// per-user index without decoding: the expired sessions of a user leave it
// and the live one stays findable.
func TestMemorySweepKeepsIndexAndCache(t *testing.T) {
	m := NewMemory(MemoryOptions{CleanupInterval: time.Hour})
	defer m.Close()
	now := time.Now()
	live := NewSession(NewID(), nil, now, time.Hour, 0)
	live.UserID = "carol"
	if err := m.Create(t.Context(), live); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		s := NewSession(NewID(), nil, now, time.Millisecond, 0)
		s.UserID = "carol"
		if err := m.Create(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	m.sweepSessions()
	if n := m.Len(); n != 1 {
		t.Fatalf("after the sweep the table holds %d sessions, want 1", n)
	}
	keys, ok := m.userKeys("carol")
	if !ok || len(keys) != 1 || keys[0] != live.Key {
		t.Fatalf("carol's index after the sweep = %v, %v; want only the live session", keys, ok)
	}
	if _, several := m.byUser.counts(); several != 0 {
		t.Errorf("the index keeps %d overflow sets after the sweep", several)
	}
}
