package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// RedisStore keeps sessions in Redis (github.com/redis/go-redis/v9), for
// several Caddy instances behind one load balancer: a session created,
// challenged or revoked on one instance holds on all of them. Each instance
// keeps a near-cache that serves the gate without a network round trip and
// is kept coherent by pub/sub invalidation (changes are seen everywhere
// within about a millisecond on a LAN, and within one second as a bound).
//
// When Redis is unreachable, API writes answer 503 within Timeout, the gate
// keeps serving sessions it has cached for MaxStaleness and then answers
// 503; nothing is deleted, and the store recovers without a restart when
// Redis returns. Loss and recovery of Redis are logged once each.
type RedisStore struct {
	// URL is a redis:// or rediss:// (TLS) URL:
	// redis://[user:password@]host:port[/db] ({env.*} accepted). Either URL
	// or Addresses is required.
	URL string `json:"url,omitempty"`
	// Addresses are host:port addresses: the server, or with
	// SentinelMaster the Sentinels, or with Cluster the seed nodes.
	Addresses []string `json:"addresses,omitempty"`
	// Username is the ACL user ({env.*} accepted). Default: none.
	Username string `json:"username,omitempty"`
	// Password is the ACL or requirepass password; use {env.NAME} rather
	// than a literal. Default: none.
	Password string `json:"password,omitempty"`
	// TLS, if present, makes every connection use TLS. Default: plain TCP
	// (TLS with a rediss:// URL).
	TLS *RedisTLS `json:"tls,omitempty"`
	// DB is the database number (not with Cluster). Default: 0.
	DB int `json:"db,omitempty"`
	// KeyPrefix is put before every key and the invalidation channel, so
	// several deployments can share one Redis. Default: authsession:.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// SentinelMaster is the master name monitored by Redis Sentinel;
	// Addresses are then the Sentinels. Default: none.
	SentinelMaster string `json:"sentinel_master,omitempty"`
	// Cluster selects Redis Cluster; Addresses are then seed nodes.
	// Default: false.
	Cluster bool `json:"cluster,omitempty"`
	// Timeout bounds every Redis operation; an API write that cannot
	// finish in time answers 503. Default: 500ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxStaleness is how long the gate keeps serving cached sessions
	// after contact with Redis was lost. Default: 30s.
	MaxStaleness caddy.Duration `json:"max_staleness,omitempty"`

	opts   redisstore.Options
	key    string
	logger *zap.Logger
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	// ServerName is the name expected in the server's certificate.
	// Default: the host of the (first) address.
	ServerName string `json:"server_name,omitempty"`
	// CAFile is a PEM file of the CAs that sign the server's certificate.
	// Default: the system roots.
	CAFile string `json:"ca_file,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authsession.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision resolves placeholders and builds the connection options.
func (rs *RedisStore) Provision(ctx caddy.Context) error {
	rs.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	var o redisstore.Options
	if rs.URL != "" {
		var err error
		if o, err = redisstore.ParseURL(repl.ReplaceKnown(rs.URL, "")); err != nil {
			return err
		}
	}
	if len(rs.Addresses) > 0 {
		o.Addrs = nil
		for _, a := range rs.Addresses {
			o.Addrs = append(o.Addrs, repl.ReplaceKnown(a, ""))
		}
	}
	if rs.Username != "" {
		o.Username = repl.ReplaceKnown(rs.Username, "")
	}
	if rs.Password != "" {
		o.Password = repl.ReplaceKnown(rs.Password, "")
	}
	if rs.DB != 0 {
		o.DB = rs.DB
	}
	if rs.TLS != nil {
		cfg, err := rs.TLS.config(repl)
		if err != nil {
			return err
		}
		o.TLS = cfg
	}
	o.KeyPrefix = rs.KeyPrefix
	o.MasterName = rs.SentinelMaster
	o.Cluster = rs.Cluster
	o.Timeout = time.Duration(rs.Timeout)
	o.MaxStaleness = time.Duration(rs.MaxStaleness)
	rs.opts = o

	// Same storage and settings, same pooled store across reloads. The
	// key holds a hash, never the password itself.
	id, _ := json.Marshal([]any{
		o.Addrs, o.Username, o.Password, o.DB, o.KeyPrefix,
		o.MasterName, o.Cluster, o.Timeout, o.MaxStaleness, rs.TLS,
	})
	sum := sha256.Sum256(id)
	rs.key = "redis:" + hex.EncodeToString(sum[:])
	return nil
}

func (t *RedisTLS) config(repl *caddy.Replacer) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: repl.ReplaceKnown(t.ServerName, "")}
	if t.CAFile != "" {
		pem, err := os.ReadFile(repl.ReplaceKnown(t.CAFile, ""))
		if err != nil {
			return nil, fmt.Errorf("redis tls: reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis tls: no certificate in ca_file %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Validate checks the configuration.
func (rs *RedisStore) Validate() error {
	switch {
	case len(rs.opts.Addrs) == 0:
		return errors.New("redis store: url or addresses required")
	case rs.SentinelMaster != "" && rs.Cluster:
		return errors.New("redis store: sentinel_master and cluster exclude each other")
	case len(rs.opts.Addrs) > 1 && rs.SentinelMaster == "" && !rs.Cluster:
		return errors.New("redis store: several addresses need sentinel_master or cluster")
	case rs.Cluster && rs.opts.DB != 0:
		return errors.New("redis store: cluster mode has no database numbers")
	case rs.Timeout < 0 || rs.MaxStaleness < 0:
		return errors.New("redis store: timeout and max_staleness must not be negative")
	}
	return nil
}

// StoreKey implements StoreProvider.
func (rs *RedisStore) StoreKey() string { return rs.key }

// OpenStore implements StoreProvider. The store logs the loss and the
// return of Redis once each.
func (rs *RedisStore) OpenStore(now state.Clock) (state.Store, error) {
	o := rs.opts
	o.Now = now
	logger := rs.logger
	o.OnHealth = func(up bool, err error) {
		if up {
			logger.Info("redis reachable", zap.Strings("addresses", o.Addrs))
			return
		}
		logger.Error("redis unreachable: API writes answer 503, the gate serves cached sessions for max_staleness",
			zap.Strings("addresses", o.Addrs), zap.Error(err))
	}
	return redisstore.New(o)
}

// Interface guards
var (
	_ StoreProvider         = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.Validator       = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)
