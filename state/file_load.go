package state

import (
	"fmt"
	"runtime"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// loadChunk is how many records the loader hands a decoding worker at once.
const loadChunk = 2048

type rawRecord struct{ k, v []byte }

// load reads every user state and every live session into the memory layer.
// Records whose header deadline has passed are skipped without decoding;
// the sweeper removes them. Sessions are decoded by one worker per CPU while
// the cursor walks the file (bbolt's values stay valid, read-only, for the
// life of the read transaction). A record that does not decode fails the
// load: a damaged file is reported, not silently thinned.
func (f *File) load() (err error) {
	defer func() {
		// bbolt panics on some kinds of damaged pages.
		if p := recover(); p != nil {
			err = fmt.Errorf("file is corrupt: %v", p)
		}
	}()
	now := f.now()
	nowNanos := now.UnixNano()
	return f.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u := new(UserState)
			if err := f.codec.decode(bucketUsers, k, v, u); err != nil {
				return fmt.Errorf("user record %x: %w", k[:min(len(k), 4)], err)
			}
			f.mem.users[u.UserID] = u
			return nil
		}); err != nil {
			return err
		}

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
			wg.Add(1)
			go func() {
				defer wg.Done()
				for chunk := range chunks {
					for _, r := range chunk {
						s := new(Session)
						if err := f.codec.decode(bucketSessions, r.k, r.v, s); err != nil {
							fail(fmt.Errorf("session record %x: %w", r.k[:min(len(r.k), 4)], err))
							break
						}
						if len(r.k) != len(s.Key) || string(r.k) != string(s.Key[:]) {
							fail(fmt.Errorf("session record %x holds another key", r.k[:min(len(r.k), 4)]))
							break
						}
						if s.Live(now) {
							f.mem.cache.Set(ck(s.Key), s, f.mem.ttl(s))
							f.mem.index(s.UserID, s.Key)
						}
					}
				}
			}()
		}

		cerr := walkLive(tx.Bucket(bucketSessions), nowNanos, func(chunk []rawRecord) bool {
			select {
			case chunks <- chunk:
				return true
			case <-failed:
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
