package caddymodule

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
)

// TestLoadOrCreateKeyConcurrentStart: instances starting together on a
// fresh data directory all end up with the one key that the file holds
// (none reads a file another is still writing), and a later start reads
// it back.
func TestLoadOrCreateKeyConcurrentStart(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	a := &App{logger: zap.NewNop()}
	repl := caddy.NewReplacer()
	keys := make([][]byte, 16)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = a.loadOrCreateKey(repl, "", "seal_key", "seal.key") })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("start %d got another key", i)
		}
	}
	again, err := a.loadOrCreateKey(repl, "", "seal_key", "seal.key")
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("restart: %v, same key %v", err, bytes.Equal(again, keys[0]))
	}
	path := filepath.Join(caddy.AppDataDir(), "authsession", "seal.key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, err := a.loadOrCreateKey(repl, "", "otp key", "otp.key"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.loadOrCreateKey(repl, "bm9wZQ==", "otp key", "otp.key"); err == nil {
		t.Fatal("a 4-byte configured key was accepted")
	}
}
