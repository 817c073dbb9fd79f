// Package bench is the benchmark harness of caddy-authsession: `make bench`
// (bench/run.sh) measures the gate inside a real Caddy against plain
// reverse_proxy, respond, forward_auth and basic_auth with wrk; the Go
// benchmarks of this package measure the gate's hit path, session creation
// and memory per live session in-process. docs/performance.md explains the
// numbers.
//
// The package itself only holds what the harness's processes must agree on:
// the deterministic benchmark session ids.
package bench
