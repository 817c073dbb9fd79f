// Package bench is the benchmark harness of caddy-authsession.
//
// `make bench` (run.sh, with the benchtool command) measures the gate inside
// a real Caddy against plain respond, reverse_proxy, forward_auth and
// basic_auth with wrk; `make bench-go` runs this package's Go benchmarks:
// the gate's hit path and session creation over each store, the API
// families, and memory per live session; store.sh adds the store
// benchmarks of state/filestore (start-up with 100k and 1M sessions).
// docs/performance.md explains the figures.
//
// The package itself only holds what the harness's processes must agree
// on: the deterministic benchmark session ids.
package bench
