package filestore

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authsession/caddy-authsession/state"
)

// touchShards spreads pending access times over several maps so that gate
// requests touching different sessions rarely share a mutex.
const touchShards = 64

// flushChunk bounds the records written by one background transaction.
const flushChunk = 4096

type touchShard struct {
	mu sync.Mutex
	m  map[state.Key]time.Time
}

type touchEntry struct {
	key state.Key
	at  time.Time
}

// noteTouch records that key was accessed at at, for the next flush.
func (f *Store) noteTouch(key state.Key, at time.Time) {
	sh := &f.touches[key[0]%touchShards]
	sh.mu.Lock()
	if cur, ok := sh.m[key]; !ok || at.After(cur) {
		sh.m[key] = at
	}
	sh.mu.Unlock()
}

// dropTouch forgets a pending access time (the record was just written or
// removed).
func (f *Store) dropTouch(key state.Key) {
	sh := &f.touches[key[0]%touchShards]
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
}

// background runs the flusher and the sweeper until Close.
func (f *Store) background(touchEvery, sweepEvery time.Duration) {
	defer f.done.Done()
	tt := time.NewTicker(touchEvery)
	defer tt.Stop()
	st := time.NewTicker(sweepEvery)
	defer st.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tt.C:
			if err := f.flushTouches(); err != nil {
				f.onErr(fmt.Errorf("session store %s: writing access times: %w", f.path, err))
			}
		case <-st.C:
			if f.loading.Load() {
				continue // the loader has not seen every record yet
			}
			if _, err := f.sweep(); err != nil {
				f.onErr(fmt.Errorf("session store %s: sweeping expired sessions: %w", f.path, err))
			}
		}
	}
}

// flushTouches writes the pending access times. Each record is read, given
// the later of its stored and pending access time, and written back in the
// same transaction, so a flush never overwrites a concurrent Update. On
// failure the unwritten times stay pending for the next flush.
func (f *Store) flushTouches() error {
	var pending []touchEntry
	for i := range f.touches {
		sh := &f.touches[i]
		sh.mu.Lock()
		for k, at := range sh.m {
			pending = append(pending, touchEntry{k, at})
		}
		clear(sh.m)
		sh.mu.Unlock()
	}
	for len(pending) > 0 {
		n := min(len(pending), flushChunk)
		chunk := pending[:n]
		err := f.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSessions)
			for _, e := range chunk {
				v := b.Get(e.key[:])
				if v == nil {
					continue
				}
				s := new(state.Session)
				if err := f.codec.decode(bucketSessions, e.key[:], v, s); err != nil {
					f.onErr(fmt.Errorf("session store %s: record %s: %w", f.path, e.key.Short(), err))
					continue
				}
				if !e.at.After(s.LastAccessTime) {
					continue
				}
				s.LastAccessTime = e.at
				rec, err := f.codec.encode(bucketSessions, e.key[:], s.Deadline(), s)
				if err != nil {
					return err
				}
				if err := b.Put(e.key[:], rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			for _, e := range pending {
				f.noteTouch(e.key, e.at)
			}
			return err
		}
		pending = pending[n:]
	}
	return nil
}

// sweep removes the sessions whose deadline has passed from the file and
// from memory, and returns how many it removed from the file. A record whose
// stored deadline has passed but that memory holds live (an access not yet
// flushed) is kept.
func (f *Store) sweep() (int, error) {
	now := f.now()
	nowNanos := now.UnixNano()
	var expired []state.Key
	err := f.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSessions).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if d, ok := recordDeadline(v); ok && d != 0 && d <= nowNanos && len(k) == len(state.Key{}) {
				expired = append(expired, state.Key(k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for len(expired) > 0 {
		n := min(len(expired), flushChunk)
		chunk := expired[:n]
		expired = expired[n:]
		var gone []state.Key
		err := f.db.Update(func(tx *bolt.Tx) error {
			gone = gone[:0]
			b := tx.Bucket(bucketSessions)
			for _, k := range chunk {
				v := b.Get(k[:])
				if d, ok := recordDeadline(v); !ok || d == 0 || d > nowNanos {
					continue // rewritten since the scan
				}
				if f.mem.HoldsLive(k, now) {
					continue
				}
				if err := b.Delete(k[:]); err != nil {
					return err
				}
				gone = append(gone, k)
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		removed += len(gone)
		for _, k := range gone {
			f.mem.DropIfDead(k, now)
		}
	}
	return removed, nil
}
