package filestore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/authsession/caddy-authsession/state"
)

// Options configures a file store (see Open).
type Options struct {
	// Path is the bbolt file; it is created if missing. Required.
	Path string
	// Now is the clock used for liveness checks. Default: time.Now.
	Now state.Clock
	// EncryptionKey, if set, is a 32-byte AES-256 key: every record written
	// is sealed with AES-GCM. A file that has been written with a key
	// cannot be opened without it (or with another one).
	EncryptionKey []byte
	// TouchInterval is how often LastAccessTime refreshes are written to
	// disk; a crash loses at most this much of them. Default: 1m.
	TouchInterval time.Duration
	// SweepInterval is how often expired records are removed from the
	// file and memory. Default: 1m.
	SweepInterval time.Duration
	// LockTimeout bounds the wait for the file's lock, held by any other
	// process (or store) that has it open. Default: 5s.
	LockTimeout time.Duration
	// MaxBatchDelay is how long a write waits for others to share its
	// commit (and fsync). Default: 2ms.
	MaxBatchDelay time.Duration
	// MaxSize caps the file's size in bytes; a write that would grow it
	// further fails as if the disk were full. Default: 0, no cap.
	MaxSize int
	// BackgroundLoadAbove is the number of live sessions above which
	// Open returns before they are all in memory: the rest load in the
	// background while reads of sessions not yet loaded go to the file, and
	// ByUser and Scan wait for the load. A record that does not decode is
	// then reported through OnError and skipped, where a smaller file fails
	// to open. Default: 50000.
	BackgroundLoadAbove int
	// OnError receives errors of the background work (loading, touch
	// flushes, sweeps), which have no caller to return them to.
	// Default: ignore.
	OnError func(error)

	// beforeLoad, if set, runs in the background loader before it starts
	// (tests hold the load with it).
	beforeLoad func()
}

// Store is a durable store: every session and user state is written
// through to a bbolt file, fsynced before the write returns, and kept in a
// state.Memory that serves every read. Concurrent writers share commits through
// bbolt's batching. Access-time refreshes (Touch) are applied in memory at
// once and written to the file in the background.
//
// The memory layer changes only after the file has committed a write, so a
// failed write (a full disk) leaves both as they were and returns an error
// wrapping state.ErrUnavailable.
type Store struct {
	path  string
	now   state.Clock
	db    *bolt.DB
	codec *codec
	mem   *state.Memory
	onErr func(error)

	// wlocks serialise writers of one session key (striped by its first
	// byte) across their commit; ulocks do the same for user states. The
	// memory layer's own locks are taken only briefly, so Touch never waits
	// for a disk write.
	wlocks [256]sync.Mutex
	ulocks [256]sync.Mutex

	touches [touchShards]touchShard

	// loading is set while sessions load in the background; loaded is
	// closed when they have. dirty holds the keys written meanwhile.
	loading atomic.Bool
	loaded  chan struct{}
	dirtyMu sync.Mutex
	dirty   map[state.Key]struct{}

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	bucketSessions = []byte("sessions")
	bucketUsers    = []byte("users")
	bucketMeta     = []byte("meta")

	metaFormat   = []byte("format")
	metaKeyCheck = []byte("keycheck")
)

// fileFormat is the layout version of the whole file (buckets and meta).
const fileFormat byte = 1

// Open opens (or creates) the file store at opts.Path, loads its live
// records into memory and starts the background flusher and sweeper. Errors
// name the file.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("file store needs a path")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = time.Minute
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.MaxBatchDelay <= 0 {
		opts.MaxBatchDelay = 2 * time.Millisecond
	}
	if opts.BackgroundLoadAbove <= 0 {
		opts.BackgroundLoadAbove = defaultBackgroundLoadAbove
	}
	if opts.OnError == nil {
		opts.OnError = func(error) {}
	}
	cd, err := newCodec(opts.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("session store %s: %w", opts.Path, err)
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		MaxSize:      opts.MaxSize,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("session store %s is locked by another process (waited %s)", opts.Path, opts.LockTimeout)
		}
		return nil, fmt.Errorf("opening session store %s: %w", opts.Path, err)
	}
	db.MaxBatchDelay = opts.MaxBatchDelay
	f := &Store{
		path:   opts.Path,
		now:    opts.Now,
		db:     db,
		codec:  cd,
		mem:    state.NewMemory(state.MemoryOptions{Now: opts.Now, CleanupInterval: opts.SweepInterval}),
		onErr:  opts.OnError,
		stop:   make(chan struct{}),
		loaded: make(chan struct{}),
		dirty:  make(map[state.Key]struct{}),
	}
	for i := range f.touches {
		f.touches[i].m = make(map[state.Key]time.Time)
	}
	if err := f.prepare(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening session store %s: %w", opts.Path, err)
	}
	if err := f.open(opts.BackgroundLoadAbove, opts.beforeLoad); err != nil {
		_ = db.Close()
		f.mem.Close()
		return nil, fmt.Errorf("loading session store %s: %w", opts.Path, err)
	}
	f.done.Add(1)
	go f.background(opts.TouchInterval, opts.SweepInterval)
	return f, nil
}

// Loaded returns a channel closed once every live session is in memory
// (at once, unless the file is loading in the background).
func (f *Store) Loaded() <-chan struct{} { return f.loaded }

// Path returns the file's path.
func (f *Store) Path() string { return f.path }

// Get implements state.Store. It reads memory only, once loaded.
func (f *Store) Get(_ context.Context, key state.Key) (*state.Session, error) { return f.lookup(key) }

// ByUser implements state.Store. It reads memory only, once loaded.
func (f *Store) ByUser(ctx context.Context, userID string) ([]*state.Session, error) {
	if err := f.waitLoaded(ctx); err != nil {
		return nil, err
	}
	return f.mem.ByUser(ctx, userID)
}

// Scan implements state.Store. It reads memory only, once loaded.
func (f *Store) Scan(ctx context.Context, fn func(*state.Session) bool) error {
	if err := f.waitLoaded(ctx); err != nil {
		return err
	}
	return f.mem.Scan(ctx, fn)
}

// Census implements state.Censuser. It reads memory only, once loaded.
func (f *Store) Census(ctx context.Context, now, horizon time.Time, ending func(state.Ending)) (state.Census, error) {
	if err := f.waitLoaded(ctx); err != nil {
		return state.Census{}, err
	}
	return f.mem.Census(ctx, now, horizon, ending)
}

// GetUser implements state.Store. It reads memory only.
func (f *Store) GetUser(ctx context.Context, userID string) (*state.UserState, error) {
	return f.mem.GetUser(ctx, userID)
}

// Create implements state.Store.
func (f *Store) Create(_ context.Context, s *state.Session) error {
	l := &f.wlocks[s.Key[0]]
	l.Lock()
	defer l.Unlock()
	if _, err := f.lookup(s.Key); err == nil {
		return state.ErrExists
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	f.markDirty(s.Key)
	c := s.Clone()
	c.Version = 1
	if err := f.putSession(c); err != nil {
		return err
	}
	f.dropTouch(c.Key)
	f.mem.Install(c, nil)
	s.Version = 1
	return nil
}

// Update implements state.Store.
func (f *Store) Update(_ context.Context, key state.Key, fn func(*state.Session) error) (*state.Session, error) {
	l := &f.wlocks[key[0]]
	l.Lock()
	defer l.Unlock()
	old, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	c := old.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.Key = key
	c.Version = old.Version + 1
	f.markDirty(key)
	if err := f.putSession(c); err != nil {
		return nil, err
	}
	if t, touched := f.mem.Install(c, old); touched {
		// A Touch landed while the record was being written: memory keeps
		// it, and the next flush writes it.
		f.noteTouch(key, t)
	}
	return c, nil
}

// Delete implements state.Store.
func (f *Store) Delete(_ context.Context, key state.Key) (*state.Session, error) {
	l := &f.wlocks[key[0]]
	l.Lock()
	defer l.Unlock()
	s, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	f.markDirty(key)
	if err := f.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete(key[:])
	}); err != nil {
		return nil, err
	}
	f.dropTouch(key)
	f.mem.Remove(key)
	return s, nil
}

// Touch implements Store: memory now, the file at the next flush.
func (f *Store) Touch(ctx context.Context, key state.Key, at time.Time) error {
	if _, err := f.lookup(key); err != nil {
		return err
	}
	if err := f.mem.Touch(ctx, key, at); err != nil {
		return err
	}
	f.noteTouch(key, at)
	return nil
}

// UpdateUser implements state.Store.
func (f *Store) UpdateUser(_ context.Context, userID string, fn func(*state.UserState) error) (*state.UserState, error) {
	uk := userKey(userID)
	l := &f.ulocks[uk[0]]
	l.Lock()
	defer l.Unlock()
	old, _ := f.mem.GetUser(context.Background(), userID) // nil if none
	var c *state.UserState
	if old != nil {
		c = old.Clone()
	} else {
		c = &state.UserState{UserID: userID}
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	c.UserID = userID
	c.Version++
	rec, err := f.codec.encode(bucketUsers, uk[:], time.Time{}, c)
	if err != nil {
		return nil, err
	}
	if err := f.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).Put(uk[:], rec)
	}); err != nil {
		return nil, err
	}
	f.mem.PutUser(c)
	return c, nil
}

// Len returns the number of sessions held in memory, live or not yet swept.
func (f *Store) Len() int { return f.mem.Len() }

// Close stops the background work, writes pending access times, and closes
// the file. Later calls return the first call's result.
func (f *Store) Close() error {
	f.closeOnce.Do(func() {
		close(f.stop)
		f.done.Wait()
		ferr := f.flushTouches()
		cerr := f.db.Close()
		f.mem.Close()
		if ferr != nil {
			f.closeErr = fmt.Errorf("closing session store %s: writing access times: %w", f.path, ferr)
		} else if cerr != nil {
			f.closeErr = fmt.Errorf("closing session store %s: %w", f.path, cerr)
		}
	})
	return f.closeErr
}

// putSession writes c durably.
func (f *Store) putSession(c *state.Session) error {
	rec, err := f.codec.encode(bucketSessions, c.Key[:], c.Deadline(), c)
	if err != nil {
		return err
	}
	return f.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(c.Key[:], rec)
	})
}

// write commits fn through bbolt's batch (fn must be idempotent) and turns
// a failure into an error wrapping state.ErrUnavailable.
func (f *Store) write(fn func(*bolt.Tx) error) error {
	if err := f.db.Batch(fn); err != nil {
		return fmt.Errorf("%w: writing %s: %v", state.ErrUnavailable, f.path, err)
	}
	return nil
}

// prepare creates the buckets and checks the file's format and encryption
// key against the options.
func (f *Store) prepare() error {
	return f.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSessions, bucketUsers, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaFormat); {
		case v == nil:
			if err := meta.Put(metaFormat, []byte{fileFormat}); err != nil {
				return err
			}
		case len(v) != 1 || v[0] > fileFormat:
			return fmt.Errorf("file format %v is newer than this build reads (%d)", v, fileFormat)
		}
		check := meta.Get(metaKeyCheck)
		switch {
		case check == nil && f.codec.aead != nil:
			// First use of a key: later records are sealed; records
			// written before stay readable.
			rec, err := f.codec.encode(bucketMeta, metaKeyCheck, time.Time{}, "authsession")
			if err != nil {
				return err
			}
			return meta.Put(metaKeyCheck, rec)
		case check != nil && f.codec.aead == nil:
			return errors.New("the file is encrypted and no encryption key is configured")
		case check != nil:
			var s string
			if err := f.codec.decode(bucketMeta, metaKeyCheck, check, &s); err != nil {
				if errors.Is(err, errUnsealed) {
					return errors.New("the encryption key is not the one the file was written with")
				}
				return fmt.Errorf("reading key check: %w", err)
			}
		}
		return nil
	})
}

func userKey(userID string) state.Key { return sha256.Sum256([]byte(userID)) }

// Interface guard.
var _ state.Store = (*Store)(nil)
