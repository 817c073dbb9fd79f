package filestore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authsession/caddy-authsession/state"
)

// loadChunk is how many records the loader hands a decoding worker at once.
const loadChunk = 2048

// defaultBackgroundLoadAbove is the number of live sessions above which a
// file is loaded in the background (see Options.BackgroundLoadAbove).
const defaultBackgroundLoadAbove = 50_000

type rawRecord struct{ k, v []byte }

// open reads the user states into memory, checks every session record's
// header and counts the live ones, then loads the sessions: before
// returning if there are at most backgroundAbove of them, otherwise in the
// background. JSON decoding is what makes a start slow (about 5-10µs a
// session); walking the headers is cheap.
func (f *Store) open(backgroundAbove int, beforeLoad func()) (err error) {
	background := false
	defer func() {
		if err == nil && !background {
			f.dirty = nil
			close(f.loaded)
		}
	}()
	defer func() {
		// bbolt panics on some kinds of damaged pages.
		if p := recover(); p != nil {
			err = fmt.Errorf("file is corrupt: %v", p)
		}
	}()
	now := f.now()
	live := 0
	err = f.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u := new(state.UserState)
			if err := f.codec.decode(bucketUsers, k, v, u); err != nil {
				return fmt.Errorf("user record %x: %w", k[:min(len(k), 4)], err)
			}
			f.mem.PutUser(u)
			return nil
		}); err != nil {
			return err
		}
		return walkLive(tx.Bucket(bucketSessions), now.UnixNano(), func(c []rawRecord) bool {
			live += len(c)
			return true
		})
	})
	if err != nil {
		return err
	}
	f.mem.Reserve(live)
	if live <= backgroundAbove {
		return f.loadSessions(now, true)
	}
	background = true
	f.loading.Store(true)
	f.done.Go(func() {
		if beforeLoad != nil {
			beforeLoad()
		}
		if err := f.loadSessions(now, false); err != nil {
			f.onErr(fmt.Errorf("session store %s: loading sessions: %w", f.path, err))
		}
		f.loading.Store(false)
		f.dirtyMu.Lock()
		f.dirty = nil
		f.dirtyMu.Unlock()
		close(f.loaded)
	})
	return nil
}

// loadSessions decodes the live sessions into memory, one worker per CPU,
// while the cursor walks the file (bbolt's values stay valid, read-only,
// for the life of the read transaction). When strict, a record that does not
// decode fails the load: a damaged file is reported, not silently thinned.
// Otherwise (in the background, with the store already serving) such a
// record is reported through OnError and skipped, and a session already in
// memory or written since the load began is left alone.
func (f *Store) loadSessions(now time.Time, strict bool) error {
	return f.db.View(func(tx *bolt.Tx) error {
		workers := runtime.GOMAXPROCS(0)
		chunks := make(chan []rawRecord, workers*2)
		var (
			wg      sync.WaitGroup
			errOnce sync.Once
			werr    error
			failed  = make(chan struct{})
		)
		fail := func(err error) {
			errOnce.Do(func() { werr = err; close(failed) })
		}
		for range workers {
			wg.Go(func() {
				for chunk := range chunks {
					for _, r := range chunk {
						if err := f.loadRecord(r, now, strict); err != nil {
							if strict {
								fail(err)
								break
							}
							f.onErr(fmt.Errorf("session store %s: skipping %w", f.path, err))
						}
					}
				}
			})
		}
		cerr := walkLive(tx.Bucket(bucketSessions), now.UnixNano(), func(chunk []rawRecord) bool {
			select {
			case chunks <- chunk:
				return true
			case <-failed:
				return false
			case <-f.stop:
				return false
			}
		})
		close(chunks)
		wg.Wait()
		if cerr != nil {
			return cerr
		}
		return werr
	})
}

// loadRecord decodes one session record into memory.
// Memory keeps a copy of the record's binary encoding: the session is
// decoded to check it, never encoded again.
func (f *Store) loadRecord(r rawRecord, now time.Time, strict bool) error {
	s, enc, err := f.codec.decodeSession(bucketSessions, r.k, r.v)
	if err != nil {
		return fmt.Errorf("session record %x: %w", r.k[:min(len(r.k), 4)], err)
	}
	if string(r.k) != string(s.Key[:]) {
		return fmt.Errorf("session record %x holds another key", r.k[:min(len(r.k), 4)])
	}
	if !s.Live(now) {
		return nil
	}
	if strict {
		f.mem.RestoreEncoded(s, enc, nil)
		return nil
	}
	f.installLoaded(s, enc)
	return nil
}

// installLoaded puts a session read from the file into memory unless memory
// holds the key already or a writer has changed it since the load began
// (memory is then the newer truth).
func (f *Store) installLoaded(s *state.Session, enc []byte) {
	f.mem.RestoreEncoded(s, enc, f.isDirty)
}

// lookup returns the live session under key. While a background load runs,
// a session not yet in memory is read from the file and put in memory.
func (f *Store) lookup(key state.Key) (*state.Session, error) {
	if s, err := f.mem.Get(context.Background(), key); err == nil {
		return s, nil
	}
	if !f.loading.Load() {
		return nil, state.ErrNotFound
	}
	var s *state.Session
	err := f.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(key[:])
		if v == nil {
			return nil
		}
		s = new(state.Session)
		return f.codec.decode(bucketSessions, key[:], v, s)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", state.ErrUnavailable, f.path, err)
	}
	if s == nil || s.Key != key || !s.Live(f.now()) {
		return nil, state.ErrNotFound
	}
	f.installLoaded(s, nil) // read in a finished transaction: encoded again
	if s, err := f.mem.Get(context.Background(), key); err == nil {
		return s, nil
	}
	return nil, state.ErrNotFound
}

// markDirty records, while a background load runs, that a writer is about
// to change key, so the loader does not put an older copy in memory.
func (f *Store) markDirty(key state.Key) {
	if !f.loading.Load() {
		return
	}
	f.dirtyMu.Lock()
	if f.dirty != nil {
		f.dirty[key] = struct{}{}
	}
	f.dirtyMu.Unlock()
}

func (f *Store) isDirty(key state.Key) bool {
	f.dirtyMu.Lock()
	defer f.dirtyMu.Unlock()
	_, ok := f.dirty[key]
	return ok
}

// waitLoaded waits for a background load to finish, for the operations that
// need every session in memory (ByUser, Scan).
func (f *Store) waitLoaded(ctx context.Context) error {
	select {
	case <-f.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for session store %s to load: %w", f.path, ctx.Err())
	}
}

// walkLive hands the records of b whose deadline is after nowNanos to send,
// loadChunk at a time, until send returns false. It turns a panic of bbolt
// on a damaged page into an error.
func walkLive(b *bolt.Bucket, nowNanos int64, send func([]rawRecord) bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("file is corrupt: %v", p)
		}
	}()
	chunk := make([]rawRecord, 0, loadChunk)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		d, ok := recordDeadline(v)
		if !ok {
			return fmt.Errorf("session record %x: %w", k[:min(len(k), 4)], headerError(v))
		}
		if d != 0 && d <= nowNanos {
			continue
		}
		chunk = append(chunk, rawRecord{k, v})
		if len(chunk) == loadChunk {
			if !send(chunk) {
				return nil
			}
			chunk = make([]rawRecord, 0, loadChunk)
		}
	}
	if len(chunk) > 0 {
		send(chunk)
	}
	return nil
}
