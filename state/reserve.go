package state

// Reserve makes room for n sessions in an empty store, so that a store
// about to be filled (the file store loading its file) builds its maps at
// their final size instead of growing them step by step, rehashing as it
// goes. It does nothing to a store that holds sessions already.
func (m *Memory) Reserve(n int) {
	if n <= 0 {
		return
	}
	m.cache.reserve(n)
	m.byUser.reserve(n)
}

// reserve sizes the empty shards for n sessions in all (plus an eighth: the
// keys are SHA-256 digests, so shards fill evenly but not exactly).
func (t *table[A]) reserve(n int) {
	per := n/tableShards + n/tableShards/8 + 1
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		if len(sh.slots) == 0 {
			sh.slots = make(map[Key]slot[A], per)
			sh.dl, sh.keys, sh.blocks = make([]int64, 0, per), make([]Key, 0, per), make([]blockRef, 0, per)
		}
		sh.mu.Unlock()
	}
}
