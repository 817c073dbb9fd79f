package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestRedisStoreCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`redis redis://127.0.0.1:6379/1 {
		username app
		password {env.REDIS_PASSWORD}
		tls {
			server_name redis.internal
			ca_file /etc/ssl/redis-ca.pem
		}
		key_prefix shop:
		timeout 250ms
		max_staleness 10s
	}`)
	var rs RedisStore
	if err := rs.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if rs.URL != "redis://127.0.0.1:6379/1" || rs.Username != "app" || rs.Password != "{env.REDIS_PASSWORD}" ||
		rs.TLS == nil || rs.TLS.ServerName != "redis.internal" || rs.TLS.CAFile != "/etc/ssl/redis-ca.pem" ||
		rs.KeyPrefix != "shop:" || rs.Timeout != caddy.Duration(250_000_000) || rs.MaxStaleness != caddy.Duration(10_000_000_000) {
		t.Errorf("parsed %+v (tls %+v)", rs, rs.TLS)
	}

	d = caddyfile.NewTestDispenser(`redis {
		addresses 10.0.0.1:26379 10.0.0.2:26379
		sentinel_master mymaster
		db 2
	}`)
	rs = RedisStore{}
	if err := rs.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if len(rs.Addresses) != 2 || rs.SentinelMaster != "mymaster" || rs.DB != 2 || rs.Cluster {
		t.Errorf("parsed %+v", rs)
	}

	d = caddyfile.NewTestDispenser(`redis {
		addresses 10.0.0.1:7000
		cluster
	}`)
	rs = RedisStore{}
	if err := rs.UnmarshalCaddyfile(d); err != nil || !rs.Cluster {
		t.Errorf("cluster: %+v, %v", rs, err)
	}
}

func TestRedisStoreCaddyfileRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis", "needs a url or addresses"},
		{"redis redis://a:1 redis://b:1", "wrong argument count"},
		{"redis redis://a:1 {\n bogus 1\n}", `"bogus"`},
		{"redis redis://a:1 {\n db -1\n}", "db must be"},
		{"redis redis://a:1 {\n db x\n}", "db must be"},
		{"redis redis://a:1 {\n timeout soon\n}", "bad duration"},
		{"redis redis://a:1 {\n key_prefix a:\n key_prefix b:\n}", "given twice"},
		{"redis redis://a:1 {\n cluster yes\n}", "wrong argument count"},
		{"redis redis://a:1 {\n tls {\n insecure\n }\n}", `"insecure"`},
		{"redis {\n addresses\n}", "wrong argument count"},
	} {
		var rs RedisStore
		err := rs.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestRedisStoreProvision(t *testing.T) {
	t.Setenv("AUTHSESSION_TEST_REDIS_PW", "s3cret")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	rs := RedisStore{URL: "redis://127.0.0.1:6390/3", Password: "{env.AUTHSESSION_TEST_REDIS_PW}"}
	if err := rs.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rs.Validate(); err != nil {
		t.Fatal(err)
	}
	if rs.opts.Password != "s3cret" || rs.opts.DB != 3 || rs.opts.Addrs[0] != "127.0.0.1:6390" {
		t.Errorf("options %+v", rs.opts)
	}
	if strings.Contains(rs.StoreKey(), "s3cret") {
		t.Error("store key holds the password")
	}
	other := RedisStore{URL: "redis://127.0.0.1:6390/4"}
	_ = other.Provision(ctx)
	if other.StoreKey() == rs.StoreKey() {
		t.Error("two databases share a store key")
	}

	for name, bad := range map[string]RedisStore{
		"several plain addresses": {Addresses: []string{"a:1", "b:1"}},
		"sentinel and cluster":    {Addresses: []string{"a:1"}, SentinelMaster: "m", Cluster: true},
		"cluster with db":         {Addresses: []string{"a:1"}, Cluster: true, DB: 1},
		"nothing":                 {},
	} {
		if err := bad.Provision(ctx); err == nil {
			if err := bad.Validate(); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	}
}
