package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// The tests of this file run the store against a real Redis Cluster (three
// masters made with redis-cli --cluster create) and a real Sentinel setup
// (one master, one sentinel, and a replica for the failover), all on
// loopback, started and stopped by internal/redistest.

// newTopologyRedis returns a store on the given options, closed when the
// test ends, once its invalidation subscription is up.
func newTopologyRedis(t *testing.T, clk *fakeClock, o Options) *Store {
	t.Helper()
	o.KeyPrefix, o.Timeout, o.Now = "t:", 2*time.Second, clk.Now
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if _, ok := waitFor(settle, r.Up); !ok {
		t.Fatal("store never subscribed to invalidations")
	}
	return r
}

// checkTwoStores runs what several Caddy instances rely on, through two
// stores a and b on one Redis deployment: sessions made on one are read
// on the other, changes and deletions reach the other's near-cache,
// per-user lookups and scans see sessions whatever node holds them, user
// state is shared and conditional updates lose nothing.
func checkTwoStores(t *testing.T, clk *fakeClock, a, b *Store) {
	t.Helper()
	ctx := context.Background()
	const n = 40 // enough keys to land on every node of a cluster
	var keys []state.Key
	for i := range n {
		s := testSession(clk, fmt.Sprintf("user-%d", i%4))
		if err := []*Store{a, b}[i%2].Create(ctx, s); err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		keys = append(keys, s.Key)
	}
	for i, k := range keys {
		if _, err := []*Store{b, a}[i%2].Get(ctx, k); err != nil {
			t.Fatalf("session %d created on one store, Get on the other: %v", i, err)
		}
	}
	mine, err := b.ByUser(ctx, "user-1")
	if err != nil || len(mine) != n/4 {
		t.Fatalf("ByUser: %d sessions, %v; want %d", len(mine), err, n/4)
	}
	seen := 0
	if err := a.Scan(ctx, func(*state.Session) bool { seen++; return true }); err != nil || seen != n {
		t.Fatalf("Scan saw %d sessions, %v; want %d", seen, err, n)
	}

	// A status change on A reaches B's near-cache; a deletion on B reaches A's.
	k := keys[0]
	if _, err := a.Update(ctx, k, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(settle, func() bool {
		got, err := b.Get(ctx, k)
		return err == nil && got.Status == state.StatusAuthenticated
	}); !ok {
		t.Fatalf("status change on A not seen on B within %v", settle)
	} else {
		t.Logf("status change on A seen on B after %v", took)
	}
	if _, err := b.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(settle, func() bool {
		_, err := a.Get(ctx, k)
		return errors.Is(err, state.ErrNotFound)
	}); !ok {
		t.Fatalf("deletion on B not seen on A within %v", settle)
	} else {
		t.Logf("deletion on B seen on A after %v", took)
	}

	// User state and concurrent conditional updates from both stores.
	for i := range 20 {
		if _, err := []*Store{a, b}[i%2].UpdateUser(ctx, "user-2", func(u *state.UserState) error {
			u.OTPSends = append(u.OTPSends, clk.Now())
			return nil
		}); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	if u, err := a.GetUser(ctx, "user-2"); err != nil || len(u.OTPSends) != 20 {
		t.Fatalf("user state after 20 updates over two stores: %+v, %v", u, err)
	}
	k = keys[1]
	done := make(chan error, 2)
	for _, st := range []*Store{a, b} {
		go func() {
			for range 25 {
				if _, err := st.Update(ctx, k, func(c *state.Session) error {
					c.UserAttributes = map[string]string{"n": strconv.Itoa(len(c.Factors))}
					c.Factors = append(c.Factors, "x")
					return nil
				}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("concurrent Update: %v", err)
		}
	}
	b.near.flush()
	if got, err := b.Get(ctx, k); err != nil || len(got.Factors) != 50 {
		t.Fatalf("after 2×25 concurrent updates: %d, %v; want 50 (a lost update)", len(got.Factors), err)
	}
}

func TestRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t).Addrs()
	clk := newFakeClock()
	// Each store knows a different seed node.
	a := newTopologyRedis(t, clk, Options{Addrs: addrs[:1], Cluster: true})
	b := newTopologyRedis(t, clk, Options{Addrs: addrs[2:], Cluster: true})
	checkTwoStores(t, clk, a, b)
}

func TestRedisSentinel(t *testing.T) {
	su := redistest.StartSentinel(t, false)
	clk := newFakeClock()
	a := newTopologyRedis(t, clk, Options{Addrs: []string{su.Addr()}, MasterName: su.MasterName})
	b := newTopologyRedis(t, clk, Options{Addrs: []string{su.Addr()}, MasterName: su.MasterName})
	checkTwoStores(t, clk, a, b)
}

// TestRedisSentinelFailover kills the master: the sentinel promotes the
// replica, the store follows it, the sessions written before (and
// replicated) are still there, and writes work again.
func TestRedisSentinelFailover(t *testing.T) {
	su := redistest.StartSentinel(t, true)
	clk := newFakeClock()
	r := newTopologyRedis(t, clk, Options{Addrs: []string{su.Addr()}, MasterName: su.MasterName})
	other := newTopologyRedis(t, clk, Options{Addrs: []string{su.Addr()}, MasterName: su.MasterName})
	ctx := context.Background()
	before := testSession(clk, "alice")
	if err := r.Create(ctx, before); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, before.Key); err != nil { // now in other's near-cache
		t.Fatal(err)
	}
	// Wait until the replica has it (replication is asynchronous).
	if took, ok := waitFor(settle, func() bool {
		out, err := su.Replica.CLI("exists", "t:s:"+before.Key.String())
		return err == nil && out == "1"
	}); !ok {
		t.Fatalf("the replica never received the session (waited %v)", took)
	} else {
		t.Logf("the replica received the session after %v", took)
	}

	su.Master.Stop()
	start := time.Now()
	if _, ok := waitFor(settle, func() bool {
		return strings.Contains(su.Ask("get-master-addr-by-name", su.MasterName), strconv.Itoa(su.Replica.Port()))
	}); !ok {
		t.Fatal("the sentinel never promoted the replica")
	}
	var after *state.Session
	took, ok := waitFor(settle, func() bool {
		after = testSession(clk, "bob")
		return r.Create(ctx, after) == nil
	})
	if !ok {
		t.Fatal("the store never wrote again after the failover")
	}
	t.Logf("failover: writes work again %v after the master was killed (%v after the promotion)", time.Since(start), took)
	r.near.flush()
	for _, s := range []*state.Session{before, after} {
		if _, err := r.Get(ctx, s.Key); err != nil {
			t.Fatalf("session of %s after the failover: %v", s.UserID, err)
		}
	}
	// The other store's invalidation subscription followed the new master:
	// a change made through r reaches its near-cache.
	if _, err := r.Update(ctx, before.Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(settle, func() bool {
		got, err := other.Get(ctx, before.Key)
		return err == nil && got.Status == state.StatusAuthenticated
	}); !ok {
		t.Fatal("after the failover, a change through one store never reached the other's near-cache")
	} else {
		t.Logf("after the failover, a change reached the other store after %v", took)
	}
}
