package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/state"
)

// loadOrCreateKey returns a 32-byte key: the configured value (base64,
// {env.*} placeholders resolved) when there is one, else the key kept in
// the file name under Caddy's data directory, which is made on first use.
// The file appears whole or not at all (written aside, then linked into
// place), so instances starting together on one data directory all read
// the same complete key. option names the setting in errors. With a store
// that instances share (redis), a key from the data directory draws a
// warning: instances on other machines make keys of their own, and then
// cannot read what this one sealed (session ids, codes).
func (a *App) loadOrCreateKey(repl *caddy.Replacer, configured, option, name string) ([]byte, error) {
	if configured != "" {
		key, err := decodeKey(repl.ReplaceAll(configured, ""))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", option, err)
		}
		return key, nil
	}
	path := filepath.Join(caddy.AppDataDir(), "authsession", name)
	if store := a.configuredStore(); store == "redis" {
		a.logger.Warn(option+" is not set: this instance uses the key file in its data directory, but the "+store+
			" store is shared, and every instance must use the same key; set "+option+" (e.g. from {env.*}) "+
			"or copy the file to every instance", zap.String("file", path))
	}
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	key := state.NewSealKey()
	created, err := createFileOnce(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("creating key file %s: %w", path, err)
	}
	if !created {
		return a.loadOrCreateKey(repl, "", option, name) // made meanwhile by another instance
	}
	a.logger.Info("generated a new key", zap.String("file", path))
	return key, nil
}

// configuredStore is the name of the store module in the configuration
// (memory when there is none), read before the module is loaded.
func (a *App) configuredStore() string {
	var m struct {
		Module string `json:"module"`
	}
	if len(a.StoreRaw) == 0 || json.Unmarshal(a.StoreRaw, &m) != nil || m.Module == "" {
		return "memory"
	}
	return m.Module
}

// createFileOnce writes data to path unless path exists (then it reports
// false): the data goes to a temporary file in the same directory first,
// which is then hard-linked to path, so no reader ever sees a partial file.
func createFileOnce(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != state.SealKeySize {
				return nil, fmt.Errorf("key must be %d bytes, got %d", state.SealKeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("key is not base64")
}
