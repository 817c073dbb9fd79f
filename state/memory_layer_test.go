package state

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestMemoryRestoreEncoded: a session restored from its encoding reads back
// whole, is found by user and by a census, is not put over a record memory
// holds already or one skip names, and leaves the index when it expires.
func TestMemoryRestoreEncoded(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	s := NewSession(NewID(), nil, clk.Now(), time.Hour, 10*time.Minute)
	s.UserID, s.LoginName = "carol", "carol"
	s.UserAttributes = map[string]string{"mail": "carol@example.com"}
	if err := s.SetStatus(StatusAuthenticated, clk.Now(), "", 0); err != nil {
		t.Fatal(err)
	}
	s.Version = 7
	enc := AppendSession(nil, s)
	m.RestoreEncoded(s, enc, nil)
	got, err := m.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("restored session reads back as %+v, want %+v", got, s)
	}
	if ss, _ := m.ByUser(ctx, "carol"); len(ss) != 1 || ss[0].Key != s.Key {
		t.Fatalf("ByUser after RestoreEncoded: %d sessions", len(ss))
	}
	if c, _ := m.Census(ctx, clk.Now(), clk.Now(), nil); c.ByStatus[StatusAuthenticated] != 1 {
		t.Fatalf("census after RestoreEncoded: %v", c.ByStatus)
	}

	// Memory's record is the newer truth; so is a key skip names.
	older := s.Clone()
	older.Version, older.LoginName = 3, "stale"
	m.RestoreEncoded(older, AppendSession(nil, older), nil)
	if got, _ := m.Get(ctx, s.Key); got.Version != 7 {
		t.Fatalf("RestoreEncoded replaced a record memory held: version %d", got.Version)
	}
	other := NewSession(NewID(), nil, clk.Now(), time.Hour, 0)
	other.UserID = "dave"
	m.RestoreEncoded(other, AppendSession(nil, other), func(k Key) bool { return k == other.Key })
	if _, err := m.Get(ctx, other.Key); err == nil {
		t.Fatal("RestoreEncoded put a session that skip named")
	}

	// Expired and swept: gone from the index too.
	clk.Advance(11 * time.Minute)
	m.cache.Delete(s.Key)
	if keys, ok := m.userKeys("carol"); ok {
		t.Fatalf("index still holds %d keys of carol", len(keys))
	}
}
