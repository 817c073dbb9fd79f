// Package bench is the benchmark harness of caddy-authsession.
//
// `make bench` (run.sh, with the benchtool command) measures the gate inside
// a real Caddy pinned to one CPU, with wrk on another: against plain
// respond, basic_auth and forward_auth in one process, holding 1 and 1M
// sessions, during sweeps, plus RSS per session and the file store's
// restart time; `make bench-go` runs this package's Go benchmarks:
// the gate's hit path and session creation over each store, the API
// families, and memory per live session; store.sh adds the store
// benchmarks of state/filestore (start-up with 100k and 1M sessions).
// docs/performance.md explains the figures.
//
// The package itself only holds what the harness's processes must agree
// on: the deterministic benchmark session ids.
package bench
