//go:build unix

package state

import "golang.org/x/sys/unix"

// mapChunk returns size bytes (rounded up to whole pages) of zeroed memory
// mapped from the kernel, outside the Go heap: the collector neither scans
// it nor counts it towards its heap goal. Pages are only resident once
// written.
func mapChunk(size int) ([]byte, error) {
	page := unix.Getpagesize()
	size = (size + page - 1) / page * page
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func unmapChunk(b []byte) error { return unix.Munmap(b) }
