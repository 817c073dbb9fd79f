package caddymodule

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// testAdminPort is the admin port of the in-process Caddy that caddytest
// starts once per test binary: a free loopback port, so that several test
// binaries (or developers) never collide on caddytest's fixed default.
var testAdminPort = sync.OnceValue(func() int { return freePort() })

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("finding a free port: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newTester loads a Caddyfile into the in-process Caddy and returns a
// tester for it. In caddyfile, "{ADMIN}" stands for the admin address line
// and "{PORT}" for a fresh free port (the same one throughout the file);
// the port is returned too.
func newTester(t *testing.T, caddyfile string) (*caddytest.Tester, int) {
	t.Helper()
	port := freePort()
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: testAdminPort()})
	tester.InitServer(expand(caddyfile, port), "caddyfile")
	return tester, port
}

// expand substitutes "{ADMIN}" and "{PORT}" in a test Caddyfile.
func expand(caddyfile string, port int) string {
	cfg := strings.ReplaceAll(caddyfile, "{ADMIN}", fmt.Sprintf("admin localhost:%d", testAdminPort()))
	return strings.ReplaceAll(cfg, "{PORT}", fmt.Sprint(port))
}
