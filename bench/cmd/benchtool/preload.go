package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authsession/caddy-authsession/bench"
)

// oamSessionPath is the OAM create endpoint (POST).
const oamSessionPath = "/oam/services/rest/access/api/v1/session"

// runPreload creates benchmark sessions 0..n-1 through the OAM API with c
// concurrent keep-alive connections, stopping early at the deadline. With
// -span, creations are paced so that session i is not created before
// start + i×span/n: the sessions are spread over at least that long (the
// sweep measurement of run.sh has them expire at the same pace). It prints
// one line: "preload created=<k> target=<n> seconds=<s> rate=<r/s>".
// Creating fewer than n sessions (deadline) is reported, not an error; an
// API error is.
func runPreload(args []string) error {
	fs := flag.NewFlagSet("preload", flag.ExitOnError)
	base := fs.String("url", "", "base URL of the authsession API (loopback)")
	n := fs.Int("n", 1000, "sessions to create")
	c := fs.Int("c", 16, "concurrent connections")
	user := fs.String("user", "admin", "API user")
	pass := fs.String("pass", "admin-password", "API password")
	deadline := fs.Duration("deadline", 4*time.Minute, "stop creating after this long")
	span := fs.Duration("span", 0, "spread the creations over at least this long")
	_ = fs.Parse(args)
	u, err := url.Parse(*base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q is not a base URL", *base)
	}
	if err := loopbackOnly(u.Host); err != nil {
		return err
	}
	if *c < 1 || *c > 256 {
		return errors.New("-c must be from 1 to 256")
	}
	endpoint := u.JoinPath(oamSessionPath).String()
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: *c, MaxConnsPerHost: *c},
		Timeout:   30 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()

	var next, created atomic.Int64
	var once sync.Once
	var firstErr error
	start := time.Now()
	// The first creation goes alone: the API checks a credential pair with
	// bcrypt once, then from its cache, but counts uncached attempts against
	// its limit of wrong credentials before checking them, so a burst of
	// first calls in parallel would be refused with 429.
	if *n > 0 {
		if err := create(ctx, client, endpoint, *user, *pass, body(0)); err != nil {
			return fmt.Errorf("session 0: %w", err)
		}
		next.Store(1)
		created.Store(1)
	}
	var wg sync.WaitGroup
	for range *c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				if *span > 0 {
					at := start.Add(time.Duration(float64(*span) * float64(i) / float64(*n)))
					if d := time.Until(at); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				if err := create(ctx, client, endpoint, *user, *pass, body(i)); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = fmt.Errorf("session %d: %w", i, err) })
						cancel()
					}
					return
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	secs := time.Since(start).Seconds()
	k := created.Load()
	fmt.Printf("preload created=%d target=%d seconds=%.1f rate=%.0f\n", k, *n, secs, float64(k)/secs)
	return nil
}

// body is the OAM create request of benchmark session i.
func body(i int) []byte {
	return []byte(`{"userId":"` + bench.UserID(i) + `","sessionId":"` + bench.SessionID(i) + `"}`)
}

func create(ctx context.Context, client *http.Client, endpoint, user, pass string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return errors.New("status " + strconv.Itoa(resp.StatusCode) + ": " + string(msg))
	}
	return nil
}
