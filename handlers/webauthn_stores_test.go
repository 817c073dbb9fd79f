package handlers

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// storeKinds opens one store of each kind, two instances for Redis (a
// cluster of two), closed when the test ends.
func storeKinds(t *testing.T) map[string][]state.Store {
	t.Helper()
	mem := state.NewMemory(state.MemoryOptions{})
	t.Cleanup(func() { _ = mem.Close() })
	file, err := filestore.Open(filestore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = file.Close() })
	srv := redistest.Start(t)
	var reds []state.Store
	for range 2 {
		r, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		reds = append(reds, r)
	}
	return map[string][]state.Store{"memory": {mem}, "file": {file}, "redis": reds}
}

// TestWebAuthnStateInEveryStore: passkeys, recovery codes and ceremonies
// round-trip through every store, and a ceremony is taken once however
// many instances race for it.
func TestWebAuthnStateInEveryStore(t *testing.T) {
	now := time.Now().Truncate(time.Second).UTC()
	for kind, stores := range storeKinds(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			at := func(i int) state.Store { return stores[i%len(stores)] }
			codes, hashes := state.NewRecoveryCodes()
			if _, err := at(0).UpdateUser(ctx, "alice", func(u *state.UserState) error {
				u.SetRecoveryCodes(hashes, now)
				u.StartCeremony("cer", state.Ceremony{Kind: "login", Binding: "b", Data: []byte(`{"challenge":"x"}`)}, now)
				return u.AddPasskey(state.Passkey{
					ID: []byte{1, 2}, PublicKey: []byte{3, 4}, SignCount: 7, Transports: []string{"internal"},
					AAGUID: make([]byte, 16), BackupEligible: true, Name: "laptop", Created: now,
				})
			}); err != nil {
				t.Fatal(err)
			}
			u, err := at(1).GetUser(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Passkeys) != 1 || u.Passkeys[0].Name != "laptop" || u.Passkeys[0].SignCount != 7 ||
				!u.Passkeys[0].BackupEligible || len(u.Passkeys[0].AAGUID) != 16 || !u.Passkeys[0].Created.Equal(now) {
				t.Errorf("passkey read back: %+v", u.Passkeys)
			}
			if len(u.Recovery) != state.RecoveryCodeCount || !u.RecoveryAt.Equal(now) {
				t.Errorf("recovery codes read back: %d", len(u.Recovery))
			}
			// Parallel takes of one ceremony, on every instance: one wins.
			var won atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					_, err := at(i).UpdateUser(ctx, "alice", func(u *state.UserState) error {
						_, err := u.TakeCeremony("cer", "login", "b", now)
						return err
					})
					switch {
					case err == nil:
						won.Add(1)
					case !errors.Is(err, state.ErrNoCeremony):
						t.Errorf("take: %v", err)
					}
				})
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Errorf("%d takes of one ceremony succeeded, want 1", won.Load())
			}
			// Parallel uses of one recovery code: one wins.
			won.Store(0)
			for i := range 8 {
				wg.Go(func() {
					_, err := at(i).UpdateUser(ctx, "alice", func(u *state.UserState) error {
						if !u.UseRecoveryCode(codes[0]) {
							return errors.New("used")
						}
						return nil
					})
					if err == nil {
						won.Add(1)
					}
				})
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Errorf("%d uses of one recovery code succeeded, want 1", won.Load())
			}
			// A sign-count regression is refused on any instance.
			if _, err := at(1).UpdateUser(ctx, "alice", func(u *state.UserState) error {
				return u.UsePasskey([]byte{1, 2}, 8, true, true, false, now)
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := at(0).UpdateUser(ctx, "alice", func(u *state.UserState) error {
				return u.UsePasskey([]byte{1, 2}, 8, true, true, false, now)
			}); !errors.Is(err, state.ErrSignCount) {
				t.Errorf("replayed counter on the other instance: %v", err)
			}
		})
	}
}
