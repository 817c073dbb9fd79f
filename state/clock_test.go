package state

import "github.com/authsession/caddy-authsession/internal/testkit"

// fakeClock is an injected clock that tests move by hand.
type fakeClock = testkit.Clock

func newFakeClock() *fakeClock { return testkit.NewClock(testkit.Start) }
