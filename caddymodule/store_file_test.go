package caddymodule

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/state"
)

func TestFileStoreCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    FileStore
		wantErr string
	}{
		{in: `file`, want: FileStore{}},
		{in: `file /var/lib/caddy/s.db`, want: FileStore{Path: "/var/lib/caddy/s.db"}},
		{
			in: "file s.db {\n encryption_key {env.KEY}\n flush_interval 30s\n sweep_interval 5m\n}",
			want: FileStore{
				Path: "s.db", EncryptionKey: "{env.KEY}",
				FlushInterval: caddy.Duration(30 * time.Second), SweepInterval: caddy.Duration(5 * time.Minute),
			},
		},
		{in: `file a b`, wantErr: "wrong argument count"},
		{in: "file {\n bogus 1\n}", wantErr: `unrecognized store file option "bogus"`},
		{in: "file {\n flush_interval 1m\n flush_interval 2m\n}", wantErr: `store file flush_interval given twice`},
		{in: "file {\n flush_interval\n}", wantErr: "wrong argument count"},
		{in: "file {\n flush_interval soon\n}", wantErr: `bad duration "soon"`},
		{in: "file {\n sweep_interval 0s\n}", wantErr: "sweep_interval must be positive"},
		{in: "file {\n encryption_key\n}", wantErr: "wrong argument count"},
		{in: "file {\n encryption_key a b\n}", wantErr: "wrong argument count"},
	} {
		var got FileStore
		err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got.Path != tc.want.Path || got.EncryptionKey != tc.want.EncryptionKey ||
			got.FlushInterval != tc.want.FlushInterval || got.SweepInterval != tc.want.SweepInterval {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestFileStoreProvision(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	t.Setenv("XDG_DATA_HOME", t.TempDir())

	def := new(FileStore)
	if err := def.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(caddy.AppDataDir(), "authsession", "sessions.db"); def.StoreKey() != "file:"+want {
		t.Fatalf("default store key %q, want file:%s", def.StoreKey(), want)
	}

	key := base64.StdEncoding.EncodeToString(state.NewSealKey())
	t.Setenv("AUTHSESSION_TEST_FILE_KEY", key)
	dir := t.TempDir()
	fs := &FileStore{Path: filepath.Join(dir, "sub", "s.db"), EncryptionKey: "{env.AUTHSESSION_TEST_FILE_KEY}"}
	if err := fs.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := fs.OpenStore(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	// The same file with another key is refused, naming the file.
	other := &FileStore{Path: fs.Path, EncryptionKey: base64.StdEncoding.EncodeToString(state.NewSealKey())}
	if err := other.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.OpenStore(time.Now); err == nil || !strings.Contains(err.Error(), fs.Path) {
		t.Fatalf("open with another key: %v", err)
	}
	bad := &FileStore{Path: fs.Path, EncryptionKey: "c2hvcnQ="}
	if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "encryption_key") {
		t.Fatalf("short key: %v", err)
	}
}
