package redisstore

import (
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

// fakeClock is an injected clock that tests move by hand.
type fakeClock = testkit.Clock

func newFakeClock() *fakeClock { return testkit.NewClock(testkit.Start) }

// settle bounds the waits for what happens asynchronously (an invalidation
// crossing pub/sub, a resubscription, a failover): generous, since a
// loaded two-core machine can be slow, and the tests wait on the condition,
// so a fast machine waits no longer than it takes. The documented latency
// bound has a test of its own (TestRedisInvalidationBound).
const settle = 30 * time.Second

// waitFor polls cond until it holds or the timeout passes, and returns how
// long it took and whether it held.
var waitFor = testkit.WaitFor
