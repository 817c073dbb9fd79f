package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authsession/caddy-authsession/state"
)

// Options configures a Redis store.
type Options struct {
	// Addrs are the host:port addresses of the server, of the Sentinels
	// (with MasterName) or of cluster seed nodes (with Cluster). Required.
	Addrs []string
	// Username and Password authenticate to Redis (ACL user or
	// requirepass). Both optional.
	Username string
	Password string
	// TLS, if not nil, makes every connection use TLS with this config.
	TLS *tls.Config
	// DB is the database number (single server and Sentinel only).
	DB int
	// KeyPrefix is put before every key and the invalidation channel, so
	// several deployments can share one Redis. Default: "authsession:".
	KeyPrefix string
	// MasterName selects Redis Sentinel: Addrs are the Sentinels and this
	// is the name of the monitored master.
	MasterName string
	// Cluster selects Redis Cluster: Addrs are seed nodes.
	Cluster bool
	// Timeout bounds every operation on Redis; a write that cannot finish
	// in time fails with state.ErrUnavailable. Default: 500ms.
	Timeout time.Duration
	// MaxStaleness is how long Get keeps serving near-cached sessions after
	// contact with Redis was lost; later it returns state.ErrUnavailable.
	// Default: 30s.
	MaxStaleness time.Duration
	// CacheTTL bounds how long a session stays in the local near-cache
	// without being read again from Redis, whatever the invalidations.
	// Default: 1m.
	CacheTTL time.Duration
	// TouchInterval is how often batched Touch calls are written to Redis.
	// Default: 1s.
	TouchInterval time.Duration
	// PingInterval is how often the invalidation subscription is checked;
	// a subscription silent for three intervals counts as lost.
	// Default: 1s.
	PingInterval time.Duration
	// Now is the clock used for liveness and staleness. Default: time.Now.
	Now state.Clock
	// OnHealth, if set, is called once each time the store loses (up is
	// false, err says why) or regains (up is true) contact with Redis.
	// It runs on the store's background goroutine and must not block.
	OnHealth func(up bool, err error)
}

// ParseURL returns options for a redis:// or rediss:// (TLS) URL of the
// form redis://[user:password@]host:port[/db]. Query parameters are refused:
// timeouts and the like are set through Options.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Not the *url.Error itself: it quotes the URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return Options{}, fmt.Errorf("parsing redis url: %w", err)
	}
	if u.RawQuery != "" {
		return Options{}, fmt.Errorf("redis url: query parameters are not supported")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return Options{}, fmt.Errorf("redis url: scheme must be redis or rediss, not %q", u.Scheme)
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return Options{}, fmt.Errorf("parsing redis url: %w", err)
	}
	return Options{
		Addrs:    []string{o.Addr},
		Username: o.Username,
		Password: o.Password,
		TLS:      o.TLSConfig,
		DB:       o.DB,
	}, nil
}

// Store is the store for several instances: sessions and per-user state
// live in Redis, and a local near-cache in front of it answers Get without a
// network round trip. Writes publish the key on an invalidation channel and
// every instance drops its cached copy on receipt, so a change made on one
// instance is seen by all within the pub/sub latency.
//
// Records are Redis hashes: the JSON of the record ("d"), its version ("v"),
// the token of the write that made it ("w"), and for sessions the last access
// ("at", zero-padded Unix nanoseconds), expiry ("et", Unix ms) and idle
// timeout ("idle", ms) from which Lua scripts compute the key's TTL. Writes
// are compare-and-set scripts on the version, so concurrent writers on
// several instances never lose an update; fn is retried instead.
//
// When Redis is unreachable, every write and every read that misses the
// near-cache fails within Timeout with an error wrapping state.ErrUnavailable;
// near-cached sessions are served for MaxStaleness after the last moment the
// invalidation subscription was known good. A write that failed drops the
// session from the near-cache (it may have been applied). Nothing is deleted
// because of a failed read. On resubscription the near-cache is emptied,
// since invalidations may have been missed.
type Store struct {
	opts   Options
	now    state.Clock
	client redis.UniversalClient
	near   *nearCache
	health health

	prefix  string
	channel string
	self    string // instance id, to ignore our own invalidations

	touchMu   sync.Mutex
	touches   map[state.Key]time.Time
	touchKick chan struct{}

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New connects to Redis as opts says and starts the store's background work
// (invalidation subscription, touch writer). It does not wait for Redis: an
// unreachable server shows as state.ErrUnavailable on use and OnHealth(false).
func New(opts Options) (*Store, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redis store: no address")
	}
	if opts.MasterName != "" && opts.Cluster {
		return nil, errors.New("redis store: sentinel and cluster modes exclude each other")
	}
	if len(opts.Addrs) > 1 && opts.MasterName == "" && !opts.Cluster {
		return nil, errors.New("redis store: several addresses need sentinel or cluster mode")
	}
	if opts.Cluster && opts.DB != 0 {
		return nil, errors.New("redis store: cluster mode has no database numbers")
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "authsession:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.MaxStaleness <= 0 {
		opts.MaxStaleness = 30 * time.Second
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	uo := &redis.UniversalOptions{
		Addrs:                 opts.Addrs,
		Username:              opts.Username,
		Password:              opts.Password,
		TLSConfig:             opts.TLS,
		DB:                    opts.DB,
		MasterName:            opts.MasterName,
		MaxRetries:            1, // scripts carry a write token: a replay is detected
		DialTimeout:           opts.Timeout,
		ReadTimeout:           opts.Timeout,
		WriteTimeout:          opts.Timeout,
		PoolTimeout:           opts.Timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	}
	var client redis.UniversalClient
	switch {
	case opts.MasterName != "":
		client = redis.NewFailoverClient(uo.Failover())
	case opts.Cluster:
		client = redis.NewClusterClient(uo.Cluster())
	default:
		client = redis.NewClient(uo.Simple())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Store{
		opts:      opts,
		now:       opts.Now,
		client:    client,
		near:      newNearCache(opts.CacheTTL),
		prefix:    opts.KeyPrefix,
		channel:   opts.KeyPrefix + "inv",
		self:      randomToken(),
		touches:   make(map[state.Key]time.Time),
		touchKick: make(chan struct{}, 1),
		cancel:    cancel,
	}
	r.health.init(opts.Now, opts.OnHealth)
	r.wg.Add(3)
	go r.subscribeLoop(ctx)
	go r.touchLoop(ctx)
	go func() { defer r.wg.Done(); r.near.sweep(ctx) }()
	return r, nil
}

// Close stops the background work, writes pending touches (bounded by the
// timeout) and closes the connections.
func (r *Store) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		r.flushTouches(ctx)
		cancel()
		r.near.flush()
		err = r.client.Close()
	})
	return err
}

// Up reports whether the store currently has contact with Redis (its
// invalidation subscription is established).
func (r *Store) Up() bool { return r.health.isUp() }

func (r *Store) sessionKey(k state.Key) string { return r.prefix + "s:" + k.String() }
func (r *Store) userKey(id string) string      { return r.prefix + "u:" + id }
func (r *Store) indexKey(id string) string     { return r.prefix + "x:" + id }

// opCtx bounds one operation by the configured timeout.
func (r *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.Timeout)
}

// unavailable wraps a backend failure so that callers see state.ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("redis store: %s: %w: %w", op, state.ErrUnavailable, err)
}

// Interface guard.
var _ state.Store = (*Store)(nil)
