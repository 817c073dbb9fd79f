package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

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

// TestLoadOrCreateKeyWarnsForSharedStore: with the redis store, a key
// taken from the data directory is logged as a warning (another instance
// would make another key); with the memory store, or a configured key, it
// is not.
func TestLoadOrCreateKeyWarnsForSharedStore(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	repl := caddy.NewReplacer()
	for _, tc := range []struct {
		store      string
		configured string
		warn       bool
	}{
		{`{"module":"redis","address":"127.0.0.1:1"}`, "", true},
		{`{"module":"redis"}`, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), false},
		{`{"module":"memory"}`, "", false},
		{``, "", false},
		{`{"module":"file","path":"/tmp/x"}`, "", false},
	} {
		core, logs := observer.New(zap.WarnLevel)
		a := &App{logger: zap.New(core), StoreRaw: json.RawMessage(tc.store)}
		for _, k := range []struct{ option, name string }{{"seal_key", "seal.key"}, {"otp key", "otp.key"}} {
			if _, err := a.loadOrCreateKey(repl, tc.configured, k.option, k.name); err != nil {
				t.Fatal(err)
			}
		}
		if got := logs.FilterMessageSnippet("every instance must use the same key").Len(); (got == 2) != tc.warn || (got != 0 && got != 2) {
			t.Errorf("store %s, configured %v: %d warnings, want them: %v", tc.store, tc.configured != "", got, tc.warn)
		}
	}
}
