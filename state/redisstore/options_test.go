package redisstore

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	o, err := ParseURL("rediss://app:s3cret@redis.example:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 1 || o.Addrs[0] != "redis.example:6380" || o.Username != "app" ||
		o.Password != "s3cret" || o.DB != 2 || o.TLS == nil {
		t.Errorf("ParseURL = %+v", o)
	}
	o, err = ParseURL("redis://127.0.0.1")
	if err != nil || o.Addrs[0] != "127.0.0.1:6379" || o.TLS != nil || o.DB != 0 {
		t.Errorf("ParseURL(plain) = %+v, %v", o, err)
	}
	for _, bad := range []string{
		"http://127.0.0.1:6379",
		"redis://127.0.0.1:6379/0?dial_timeout=3",
		"redis://127.0.0.1:6379/notanumber",
		"://",
		"redis://app:s3cret@127.0.0.1:port/0",
		"redis://app:s3cret@127.0.0.1:6379/x",
	} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestNewRejectsContradictions(t *testing.T) {
	for name, o := range map[string]Options{
		"no address":           {},
		"sentinel and cluster": {Addrs: []string{"a:1"}, MasterName: "m", Cluster: true},
		"several plain":        {Addrs: []string{"a:1", "b:1"}},
		"cluster with db":      {Addrs: []string{"a:1"}, Cluster: true, DB: 3},
	} {
		if r, err := New(o); err == nil {
			_ = r.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
