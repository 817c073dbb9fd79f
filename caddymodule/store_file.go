package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
)

func init() {
	caddy.RegisterModule(FileStore{})
}

// FileStore keeps sessions in a bbolt file on local disk, with the memory
// store in front of it for reads. Every write the APIs acknowledge is on
// disk (fsynced) before the answer; concurrent writes share one commit. The
// gate's lookups never touch the disk. Sessions survive restarts and
// crashes; lastAccessTime refreshes are written in the background, so a
// crash loses at most FlushInterval of them. A full disk makes writes answer
// 503 (or the family's equivalent) and loses nothing already acknowledged.
//
// The store is kept across `caddy reload` as long as its path is unchanged;
// changing the encryption key or the intervals needs a restart.
type FileStore struct {
	// Path of the bbolt file, created if missing ({env.*} accepted). Only
	// one Caddy process can use a file at a time. Default:
	// authsession/sessions.db in Caddy's data directory.
	Path string `json:"path,omitempty"`

	// EncryptionKey is a base64 AES-256 key (32 bytes) that seals every
	// record with AES-GCM ({env.*} advised). A file written with a key
	// cannot be opened without it. Default: none (records in the clear;
	// session ids are stored only as SHA-256 hashes either way).
	EncryptionKey string `json:"encryption_key,omitempty"`

	// FlushInterval is how often lastAccessTime refreshes are written to
	// the file. Default: 1m.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`

	// SweepInterval is how often expired sessions are removed from the
	// file; reads never return an expired session. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	path   string
	key    []byte
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (FileStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authsession.stores.file",
		New: func() caddy.Module { return new(FileStore) },
	}
}

// Provision resolves the path and the encryption key.
func (fs *FileStore) Provision(ctx caddy.Context) error {
	fs.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	p := repl.ReplaceAll(fs.Path, "")
	if p == "" {
		p = filepath.Join(caddy.AppDataDir(), "authsession", "sessions.db")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("store file path %q: %w", p, err)
	}
	fs.path = abs
	if fs.EncryptionKey != "" {
		key, err := decodeKey(repl.ReplaceAll(fs.EncryptionKey, ""))
		if err != nil {
			return fmt.Errorf("store file encryption_key: %w", err)
		}
		fs.key = key
	}
	return nil
}

// StoreKey implements StoreProvider: one store per file.
func (fs *FileStore) StoreKey() string { return "file:" + fs.path }

// OpenStore implements StoreProvider: it opens the file and loads its live
// sessions.
func (fs *FileStore) OpenStore(now state.Clock) (state.Store, error) {
	if err := os.MkdirAll(filepath.Dir(fs.path), 0o700); err != nil {
		return nil, fmt.Errorf("creating session store directory: %w", err)
	}
	logger := fs.logger
	start := time.Now()
	st, err := filestore.Open(filestore.Options{
		Path:          fs.path,
		Now:           now,
		EncryptionKey: fs.key,
		TouchInterval: time.Duration(fs.FlushInterval),
		SweepInterval: time.Duration(fs.SweepInterval),
		OnError: func(err error) {
			logger.Error("session store background write failed", zap.Error(err))
		},
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-st.Loaded():
		logger.Info("session store opened",
			zap.String("file", fs.path),
			zap.Int("sessions", st.Len()),
			zap.Bool("encrypted", fs.key != nil),
			zap.Duration("took", time.Since(start)))
	default:
		logger.Info("session store opened, loading sessions in the background",
			zap.String("file", fs.path),
			zap.Bool("encrypted", fs.key != nil),
			zap.Duration("took", time.Since(start)))
		go func() {
			<-st.Loaded()
			logger.Info("session store loaded",
				zap.String("file", fs.path),
				zap.Int("sessions", st.Len()),
				zap.Duration("took", time.Since(start)))
		}()
	}
	return st, nil
}

// Interface guards
var (
	_ StoreProvider         = (*FileStore)(nil)
	_ caddy.Provisioner     = (*FileStore)(nil)
	_ caddyfile.Unmarshaler = (*FileStore)(nil)
)
