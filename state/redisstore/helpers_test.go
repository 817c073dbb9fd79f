package redisstore

import "github.com/authsession/caddy-authsession/internal/testkit"

// fakeClock is an injected clock that tests move by hand.
type fakeClock = testkit.Clock

func newFakeClock() *fakeClock { return testkit.NewClock(testkit.Start) }

// waitFor polls cond until it holds or the timeout passes, and returns how
// long it took and whether it held.
var waitFor = testkit.WaitFor
