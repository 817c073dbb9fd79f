package state

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

// scanCensus is the census TakeCensus takes of a store that is not a
// Censuser: every session decoded through Scan.
func scanCensus(t *testing.T, st Store, now, horizon time.Time) (Census, []Ending) {
	t.Helper()
	var ending []Ending
	c, err := TakeCensus(context.Background(), struct{ Store }{st}, now, horizon, func(e Ending) { ending = append(ending, e) })
	if err != nil {
		t.Fatal(err)
	}
	return c, ending
}

// TestMemoryCensusAgreesWithScan: the memory store's census, read in place
// from the encodings, counts what decoding every session through Scan
// counts, for sessions in every status, expired ones, idle ones, blocks
// that ran out, and sessions with every optional part (attributes, a
// challenge, fingerprints) before and after the fields it reads.
func TestMemoryCensusAgreesWithScan(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	t0 := clk.Now()
	add := func(user string, lifetime, idle time.Duration, edit func(*Session)) {
		t.Helper()
		s := NewSession(NewID(), nil, t0, lifetime, idle)
		s.UserID, s.LoginName = user, "login of "+user
		if edit != nil {
			edit(s)
		}
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range Statuses {
		add("plain", time.Hour, 0, func(s *Session) { s.Status = st })
		add("idle", 10*time.Hour, time.Duration(i+1)*10*time.Minute, func(s *Session) { s.Status = st })
	}
	var full Session
	seed := 0
	fillEvery(t, reflect.ValueOf(&full).Elem(), &seed)
	add("full", time.Hour, 0, func(s *Session) {
		key, sealed := s.Key, s.SealedID
		*s = *full.Clone()
		s.Key, s.SealedID = key, sealed
		s.Status = StatusAuthenticated
		s.LastAccessTime, s.ExpiryTime, s.IdleTimeout = t0, t0.Add(90*time.Minute), 0
	})
	add("blocked-short", time.Hour, 0, func(s *Session) {
		s.Status, s.BlockedUntil = StatusChallengeBlocked, t0.Add(5*time.Minute)
	})
	add("blocked-long", time.Hour, 0, func(s *Session) {
		s.Status, s.BlockedUntil = StatusChallengeBlocked, t0.Add(50*time.Minute)
	})
	add("local", time.Hour, 0, func(s *Session) {
		s.Status = StatusAuthenticated
		s.LastAccessTime, s.ExpiryTime = s.LastAccessTime.In(time.Local), s.ExpiryTime.In(time.Local)
	})
	add("zone", 2*time.Hour, 0, func(s *Session) {
		s.Status = StatusFailed
		s.ExpiryTime = s.ExpiryTime.In(time.FixedZone("X", 3*3600))
	})

	// Scan sees the store's clock: move it.
	for _, after := range []time.Duration{0, 15 * time.Minute, 45 * time.Minute, 70 * time.Minute, 100 * time.Minute, 3 * time.Hour} {
		clk.Advance(t0.Add(after).Sub(clk.Now()))
		now := clk.Now()
		horizon := now.Add(20 * time.Minute)
		want, wantEnding := scanCensus(t, m, now, horizon)
		var gotEnding []Ending
		got, err := TakeCensus(ctx, m, now, horizon, func(e Ending) { gotEnding = append(gotEnding, e) })
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != want.Total || !maps.Equal(got.ByStatus, want.ByStatus) {
			t.Errorf("at +%v: census %d %v, Scan %d %v", after, got.Total, got.ByStatus, want.Total, want.ByStatus)
		}
		byKey := func(a, b Ending) int { return slices.Compare(a.Key[:], b.Key[:]) }
		slices.SortFunc(gotEnding, byKey)
		slices.SortFunc(wantEnding, byKey)
		same := func(a, b Ending) bool {
			return a.Key == b.Key && a.UserID == b.UserID && a.LoginName == b.LoginName && a.Deadline.Equal(b.Deadline)
		}
		if !slices.EqualFunc(gotEnding, wantEnding, same) {
			t.Errorf("at +%v: census found %d sessions ending by the horizon %v, Scan %d %v", after, len(gotEnding), gotEnding, len(wantEnding), wantEnding)
		}
		if after == 0 && (want.Total != 2*len(Statuses)+5 || want.ByStatus[StatusChallengeBlocked] != 2) {
			t.Errorf("at +0: Scan counts %d %v; the test's sessions are not what it means", want.Total, want.ByStatus)
		}
	}
}

// TestMemoryCensusDecodesNothing: a census of many sessions allocates the
// same as a census of a few (nothing per session), where Scan decodes each.
func TestMemoryCensusDecodesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	clk := newFakeClock()
	ctx := context.Background()
	allocs := func(n int) float64 {
		m := newTestMemory(t, clk)
		for range n {
			create(t, m, clk, "u", time.Hour, 30*time.Minute)
		}
		now := clk.Now()
		return testing.AllocsPerRun(3, func() {
			c, err := m.Census(ctx, now, now, nil)
			if err != nil || c.Total != n {
				t.Fatalf("census: %d, %v; want %d", c.Total, err, n)
			}
		})
	}
	// Decoding allocates several times per session (thousands here); the
	// margin is for other goroutines' allocations, which the count includes.
	few, many := allocs(10), allocs(5000)
	if many > few+500 {
		t.Errorf("a census allocates %.0f times for 5000 sessions, %.0f for 10: it decodes sessions", many, few)
	}
}

// TestCensusSpreadOver: under SpreadOver a census counts the same, takes
// longer than it would at once (it sleeps between shards), stops when its
// context is done, and does not slow the census of a small table.
func TestCensusSpreadOver(t *testing.T) {
	m := NewMemory(MemoryOptions{CleanupInterval: time.Hour})
	defer m.Close()
	ctx := context.Background()
	now := time.Now()
	census := func(ctx context.Context) (Census, int, time.Duration, error) {
		ending := 0
		began := time.Now()
		c, err := m.Census(ctx, now, now.Add(24*time.Hour), func(Ending) { ending++ })
		return c, ending, time.Since(began), err
	}
	empty, _, _, err := census(SpreadOver(ctx, time.Hour))
	if err != nil || empty.Total != 0 {
		t.Fatalf("census of an empty store: %v, %v", empty, err)
	}
	// Enough sessions for a census to take a few milliseconds at once.
	var want Census
	var wantEnding int
	var took time.Duration
	for n := 0; took < 5*time.Millisecond; {
		if n >= 400_000 {
			t.Skipf("a census of %d sessions takes %v: too fast a machine for this test", n, took)
		}
		for range max(n, 10_000) {
			s := NewSession(NewID(), nil, now, time.Hour, 0)
			s.UserID, s.LoginName = "u", "login"
			if err := m.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		n = m.Len()
		if want, wantEnding, took, err = census(ctx); err != nil || want.Total != n || wantEnding != n {
			t.Fatalf("census of %d: %d, %d ending, %v", n, want.Total, wantEnding, err)
		}
	}
	d := 3 * took
	got, gotEnding, spreadTook, err := census(SpreadOver(ctx, d))
	if err != nil || !maps.Equal(got.ByStatus, want.ByStatus) || gotEnding != wantEnding {
		t.Fatalf("spread census: %v, %d ending, %v; at once: %v, %d ending", got.ByStatus, gotEnding, err, want.ByStatus, wantEnding)
	}
	if spreadTook < d/2 {
		t.Errorf("spread over %v, the census took %v (%v at once): it did not sleep between shards", d, spreadTook, took)
	}
	// Spread over an hour, it rests at most spreadRest times what it
	// works: a deadline of twice the census's time at once cuts it.
	cut, cancel := context.WithTimeout(ctx, 2*took)
	defer cancel()
	if _, _, _, err := census(SpreadOver(cut, time.Hour)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("census under a deadline: %v, want the deadline's error", err)
	}
}
