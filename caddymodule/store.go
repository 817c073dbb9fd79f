package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// StoreProvider is implemented by the modules of the authsession.stores
// namespace. The app keeps the opened store in a usage pool under
// StoreKey, so a reload whose store config has the same key keeps the same
// store, and its sessions, while the old config is still serving.
type StoreProvider interface {
	// StoreKey identifies the storage: same key, same store.
	StoreKey() string
	// OpenStore opens the store; it is called once per key.
	OpenStore(now state.Clock) (state.Store, error)
}

// stores holds the open stores across config reloads.
var stores = caddy.NewUsagePool()

// pooledStore closes its store when the last config using it is gone.
type pooledStore struct{ state.Store }

// Destruct implements caddy.Destructor.
func (p pooledStore) Destruct() error { return p.Close() }

// MemoryStore keeps sessions in memory only (state.Memory, a sharded table):
// the fastest store, lost when the process exits, kept across reloads.
type MemoryStore struct {
	// CleanupInterval is how often expired sessions are swept from
	// memory; reads never return an expired session. Default: 1m.
	CleanupInterval caddy.Duration `json:"cleanup_interval,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authsession.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// StoreKey implements StoreProvider: one memory store per process.
func (MemoryStore) StoreKey() string { return "memory" }

// OpenStore implements StoreProvider.
func (m MemoryStore) OpenStore(now state.Clock) (state.Store, error) {
	return state.NewMemory(state.MemoryOptions{Now: now, CleanupInterval: time.Duration(m.CleanupInterval)}), nil
}

// Interface guards
var (
	_ StoreProvider         = MemoryStore{}
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)
