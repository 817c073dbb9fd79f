//go:build !unix

package state

// mapChunk returns size bytes from the Go heap where mapping memory is not
// supported here: a slice of bytes, which the collector does not scan but
// counts towards its heap goal.
func mapChunk(size int) ([]byte, error) { return make([]byte, size), nil }

func unmapChunk([]byte) error { return nil }
