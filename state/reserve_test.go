package state

import (
	"context"
	"testing"
	"time"
)

// TestReserveKeepsSessions checks that Reserve sizes an empty store and
// leaves one that holds sessions as it is.
func TestReserveKeepsSessions(t *testing.T) {
	m := NewMemory(MemoryOptions{CleanupInterval: time.Hour})
	defer m.Close()
	m.Reserve(10_000)
	s := NewSession(NewID(), nil, time.Now(), time.Hour, 0)
	s.UserID = "dave"
	if err := m.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	m.Reserve(10_000) // not empty: nothing may be dropped
	if got, err := m.ByUser(context.Background(), "dave"); err != nil || len(got) != 1 || got[0].Key != s.Key {
		t.Fatalf("ByUser after Reserve = %v, %v", got, err)
	}
	if _, err := m.Get(context.Background(), s.Key); err != nil {
		t.Fatalf("Get after Reserve: %v", err)
	}
}
