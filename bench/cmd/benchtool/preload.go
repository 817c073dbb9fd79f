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
// concurrent keep-alive connections, stopping early at the deadline. It
// prints one line: "preload created=<k> target=<n> seconds=<s> rate=<r/s>".
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
	var wg sync.WaitGroup
	for range *c {
		wg.Go(func() {
			var buf bytes.Buffer
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				buf.Reset()
				buf.WriteString(`{"userId":"`)
				buf.WriteString(bench.UserID(i))
				buf.WriteString(`","sessionId":"`)
				buf.WriteString(bench.SessionID(i))
				buf.WriteString(`"}`)
				if err := create(ctx, client, endpoint, *user, *pass, buf.Bytes()); err != nil {
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
