// Package bench holds benchmarks across packages: the API and the gate over
// each store. Run them with bench/store.sh, which also runs the state
// package's store benchmarks (start-up time with 100k and 1M sessions) and
// writes the figures to bench/results/.
package bench
