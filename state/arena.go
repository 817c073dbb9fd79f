package state

import (
	"encoding/binary"
	"fmt"
)

// arena holds the stored forms of one table shard's sessions outside the
// Go heap (see mapChunk): in memory the garbage collector neither scans nor
// counts towards its heap goal. A heap of N live bytes grows to ~2N before
// each collection (GOGC=100), so sessions kept on the heap cost their
// process twice their size in RSS; kept here they cost their size, rounded
// up to a block size at most an eighth larger.
//
// Memory comes in chunks that the arena carves into blocks, one per
// session; a freed block goes on the free list of its size and is reused by
// the next session of that size. A block larger than maxSmallBlock has a
// chunk of its own, unmapped when it is freed, and every chunk is unmapped
// once the shard holds no session. The arena is not safe for concurrent
// use: its shard's lock guards it, and a slice returned by bytes is valid
// only until that lock is released (a freed block is reused at once).
type arena struct {
	chunks     [][]byte
	freeChunks []uint32         // indexes of unmapped entries of chunks
	carving    int              // the chunk being carved, plus one (0: none)
	next       int              // its first byte not yet carved
	free       map[int]blockRef // block size → first free block (ref+1; 0: none)
	held       int              // bytes in blocks handed out
	mapped     int              // bytes in chunks
}

// blockRef names a block: chunk index << 32 | offset in the chunk.
type blockRef uint64

const (
	blockHeader   = 4        // the length of what the block holds, little-endian uint32
	minChunk      = 16 << 10 // a shard's first chunk; each next one doubles, up to maxChunk
	maxChunk      = 1 << 20
	maxSmallBlock = 64 << 10
)

func (r blockRef) chunk() int  { return int(r >> 32) }
func (r blockRef) offset() int { return int(uint32(r)) }

// blockSize is the size of the block holding n bytes and its header:
// rounded up to a multiple of 16, and above 128 to a multiple of an eighth
// of the power of two below it, so that at most 1/8 of a block is unused
// and a few dozen sizes cover every session.
func blockSize(n int) int {
	n += blockHeader
	if n <= 128 {
		return (n + 15) &^ 15
	}
	step := 1
	for step*16 <= n {
		step <<= 1
	}
	return (n + step - 1) / step * step
}

// bytes returns what the block r holds, in the arena's memory.
func (a *arena) bytes(r blockRef) []byte {
	c := a.chunks[r.chunk()]
	off := r.offset()
	n := int(binary.LittleEndian.Uint32(c[off:]))
	return c[off+blockHeader : off+blockHeader+n : off+blockHeader+n]
}

// alloc returns a block holding n bytes, to be written through the slice
// returned.
func (a *arena) alloc(n int) (blockRef, []byte) {
	size := blockSize(n)
	var r blockRef
	switch {
	case size > maxSmallBlock:
		r = blockRef(a.addChunk(size)) << 32
	case a.free[size] != 0:
		r = a.free[size] - 1
		next := binary.LittleEndian.Uint64(a.chunks[r.chunk()][r.offset()+blockHeader:])
		if next == 0 {
			delete(a.free, size)
		} else {
			a.free[size] = blockRef(next)
		}
	default:
		if a.carving == 0 || a.next+size > len(a.chunks[a.carving-1]) {
			grow := minChunk
			if a.carving > 0 {
				grow = min(2*len(a.chunks[a.carving-1]), maxChunk)
			}
			a.carving, a.next = a.addChunk(max(grow, size))+1, 0
		}
		r = blockRef(a.carving-1)<<32 | blockRef(a.next)
		a.next += size
	}
	c := a.chunks[r.chunk()]
	off := r.offset()
	binary.LittleEndian.PutUint32(c[off:], uint32(n))
	a.held += size
	return r, c[off+blockHeader : off+blockHeader+n : off+blockHeader+n]
}

// addChunk maps a chunk of at least size bytes and returns its index.
func (a *arena) addChunk(size int) int {
	c, err := mapChunk(size)
	if err != nil {
		panic(fmt.Sprintf("state: no memory for sessions (%d bytes): %v", size, err))
	}
	a.mapped += len(c)
	if k := len(a.freeChunks); k > 0 {
		i := a.freeChunks[k-1]
		a.freeChunks = a.freeChunks[:k-1]
		a.chunks[i] = c
		return int(i)
	}
	if len(a.chunks) >= 1<<32-1 {
		panic("state: too many session chunks in one shard")
	}
	a.chunks = append(a.chunks, c)
	return len(a.chunks) - 1
}

// storeForm puts the stored form of the encoding enc (AppendSession: its
// version byte and the fields after the Key) in a new block, without an
// intermediate copy.
func (a *arena) storeForm(enc []byte) blockRef {
	r, dst := a.alloc(len(enc) - len(Key{}))
	appendStoredForm(dst[:0], enc) // dst has the stored form's length: written in place
	return r
}

// release frees the block r: its memory goes to the next block of its size
// (a large block's chunk is unmapped).
func (a *arena) release(r blockRef) {
	c := a.chunks[r.chunk()]
	off := r.offset()
	size := blockSize(int(binary.LittleEndian.Uint32(c[off:])))
	a.held -= size
	if size > maxSmallBlock {
		a.unmap(r.chunk())
		return
	}
	if a.free == nil {
		a.free = make(map[int]blockRef)
	}
	// A block holds at least 12 bytes past its header (sizes are multiples
	// of 16): room for the link to the next free one.
	binary.LittleEndian.PutUint64(c[off+blockHeader:], uint64(a.free[size]))
	a.free[size] = r + 1
}

func (a *arena) unmap(i int) {
	a.mapped -= len(a.chunks[i])
	if err := unmapChunk(a.chunks[i]); err != nil {
		panic(fmt.Sprintf("state: releasing session memory: %v", err))
	}
	a.chunks[i] = nil
	a.freeChunks = append(a.freeChunks, uint32(i))
}

// reset unmaps every chunk: the shard holds no session.
func (a *arena) reset() {
	for i, c := range a.chunks {
		if c != nil {
			a.unmap(i)
		}
	}
	*a = arena{}
}
