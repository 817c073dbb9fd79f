package state

import "context"

// Pinger is implemented by stores whose backend can be out of reach (a
// network server): Ping makes one cheap round trip and returns an error
// wrapping ErrUnavailable when it fails. Stores in the process (memory) or
// on a local file hold no such state and do not implement it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping checks that st can be reached: st's Ping when it is a Pinger, nil
// otherwise.
func Ping(ctx context.Context, st Store) error {
	if p, ok := st.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
