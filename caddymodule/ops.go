package caddymodule

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// DefaultStatsInterval is how often the app samples its store (reachable,
// live sessions by status) when stats_interval is not set.
const DefaultStatsInterval = 30 * time.Second

// running is the app of the running config, for the admin API: set when an
// app starts, cleared when it stops unless a newer one has started since
// (Caddy starts the new config before it stops the old one).
var running atomic.Pointer[App]

// runningApp returns the running authsession app, or nil.
func runningApp() *App { return running.Load() }

// opsMetrics are the operational collectors: the store's state, the live
// sessions (sampled), and the security failures by family and factor.
// Labels never name a user, a session or an address.
type opsMetrics struct {
	storeUp  prometheus.Gauge
	sessions *prometheus.GaugeVec
	offHeap  prometheus.Gauge
	blocked  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

var newOpsMetrics = sync.OnceValue(func() *opsMetrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "caddy", Subsystem: "authsession", Name: name, Help: help}
	}
	return &opsMetrics{
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts(opts("store_up",
			"1 when the session store answered the last sample, 0 when it did not."))),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("sessions",
			"Live sessions by status, as of the last sample of the store.")), []string{"status"}),
		offHeap: prometheus.NewGauge(prometheus.GaugeOpts(opts("store_offheap_bytes",
			"Memory the session store holds outside the Go heap (the memory and file stores' session encodings), "+
				"which go_memstats and GOMEMLIMIT do not count, as of the last sample."))),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts(opts("challenge_blocked_total",
			"Factors or sessions blocked after too many wrong answers, by family and factor.")), []string{"family", "factor"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts(opts("login_failures_total",
			"Failed logins (portal passwords and codes, API credentials), by family and factor.")), []string{"family", "factor"}),
	}
})

// registerOpsMetrics registers the collectors with reg (nil: none).
func registerOpsMetrics(reg *prometheus.Registry) *opsMetrics {
	m := newOpsMetrics()
	if reg == nil {
		return m
	}
	for _, c := range []prometheus.Collector{m.storeUp, m.sessions, m.offHeap, m.blocked, m.failures} {
		if err := reg.Register(c); err != nil {
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); !ok {
				panic(err) // a programming error: conflicting descriptors
			}
		}
	}
	return m
}

// label bounds a label value: what handlers report is a known family or
// factor name; anything longer than that is not, and is counted as other.
func label(v string) string {
	switch {
	case v == "":
		return "none"
	case len(v) > 48:
		return "other"
	}
	return v
}

// observe counts ev when it is a failure.
func (m *opsMetrics) observe(ev handlers.Event) {
	if m == nil {
		return
	}
	switch ev.Name {
	case handlers.EventChallengeBlocked:
		m.blocked.WithLabelValues(label(ev.Family), label(ev.Factor)).Inc()
	case handlers.EventLoginFailed:
		m.failures.WithLabelValues(label(ev.Family), label(ev.Factor)).Inc()
	}
}

// opsRuntime is the app's operational side: the events emitter and the
// store sampler.
type opsRuntime struct {
	app      *App
	logger   *zap.Logger
	metrics  *opsMetrics
	emitter  *emitter
	interval time.Duration

	cancel context.CancelFunc
	done   chan struct{}

	// live are the sessions the last sample saw ending within two
	// intervals unless used, with when; one gone by the next sample whose
	// end has come, and which this instance did not revoke, has expired.
	// Only those are kept: a session further from its end is still live
	// at the next sample. They are kept without pointers (EndingSet): at a
	// mass expiry they are hundreds of thousands, and as strings for the
	// collector to walk they would undo the store's pointer-free table. A
	// sample later than one interval (the process stopped, a scan slower
	// than the interval) can miss an expiry.
	live      *state.EndingSet
	revokedMu sync.Mutex
	revoked   map[state.Key]struct{}
}

// provisionOps sets up the emitter and the sampler of a provisioned app.
func (a *App) provisionOps(ctx caddy.Context) {
	o := &opsRuntime{
		app:      a,
		logger:   a.logger,
		metrics:  registerOpsMetrics(ctx.GetMetricsRegistry()),
		interval: time.Duration(a.StatsInterval),
		revoked:  map[state.Key]struct{}{},
	}
	if o.interval <= 0 {
		o.interval = DefaultStatsInterval
	}
	o.emitter = newEmitter(ctx, o.metrics, a.logger, a.offline)
	o.emitter.revoked = o.noteRevoked
	a.ops = o
	a.env.Events = o.emitter
}

func (o *opsRuntime) noteRevoked(k state.Key) {
	o.revokedMu.Lock()
	o.revoked[k] = struct{}{}
	o.revokedMu.Unlock()
}

// start makes a the running app and starts the sampler. When it takes
// over from a running app (caddy reload) reading the same users file, the
// factor changes made to it in between (`caddy authsession user ...`) are emitted.
func (o *opsRuntime) start() {
	if prev := running.Swap(o.app); prev != nil && prev.otp != nil && o.app.otp != nil && sameFile(prev.otp.users, o.app.otp.users) {
		for _, ev := range factorChanges(prev.otp.users, o.app.otp.users) {
			o.emitter.Emit(context.Background(), ev)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel, o.done = cancel, make(chan struct{})
	go o.sampleLoop(ctx)
}

// stop stops the sampler.
func (o *opsRuntime) stop() {
	running.CompareAndSwap(o.app, nil)
	if o.cancel != nil {
		o.cancel()
		<-o.done
		o.cancel = nil
	}
}

func (o *opsRuntime) sampleLoop(ctx context.Context) {
	defer close(o.done)
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		o.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample pings the store, counts its live sessions by status and reports
// the sessions that expired since the previous sample.
func (o *opsRuntime) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(o.interval, 5*time.Second))
	defer cancel()
	st := o.app.store
	if err := state.Ping(ctx, st); err != nil {
		o.metrics.storeUp.Set(0)
		return
	}
	o.metrics.storeUp.Set(1)
	now := o.app.env.Now()
	hint := 0
	if o.live != nil {
		hint = o.live.Len()
	}
	live := state.NewEndingSet(hint)
	// The census reads each session's status in place, and for the
	// sessions ending within two intervals their user and login: a sample
	// of a million sessions decodes none.
	// Spread over half the interval: see state.SpreadOver.
	census, err := state.TakeCensus(state.SpreadOver(ctx, o.interval/2), st, now, now.Add(2*o.interval), live.Add)
	if err != nil {
		if ctx.Err() == nil {
			o.logger.Warn("cannot sample the session store", zap.Error(err))
		}
		return
	}
	o.metrics.sessions.Reset()
	for _, status := range state.Statuses {
		o.metrics.sessions.WithLabelValues(string(status)).Set(float64(census.ByStatus[status]))
	}
	o.metrics.offHeap.Set(float64(census.OffHeapBytes))
	o.revokedMu.Lock()
	revoked := o.revoked
	o.revoked = map[state.Key]struct{}{}
	o.revokedMu.Unlock()
	// A session of the last sample that this one did not see, and whose
	// deadline had come by the census's end, has expired (or was deleted
	// after its deadline, which comes to the same). The end, not the
	// start: the census is spread out, and a session ending meanwhile
	// may have been swept before the census came to it.
	end := o.app.env.Now()
	prev := o.live
	o.live = live
	if prev == nil {
		return
	}
	prev.Gone(live, end, func(s state.Ending) {
		if _, ok := revoked[s.Key]; ok {
			return
		}
		o.emitter.Emit(ctx, handlers.Event{
			Name: handlers.EventSessionExpired, UserKey: s.UserID, Login: s.LoginName, Session: s.Key, Family: "store",
		})
	})
}

// counts returns the live sessions of st by status (every known status
// present), for the admin API's stats.
func liveCounts(ctx context.Context, st state.Store, now time.Time) (map[string]int, int, error) {
	census, err := state.TakeCensus(ctx, st, now, time.Time{}, nil)
	out := make(map[string]int, len(state.Statuses))
	for _, s := range state.Statuses {
		out[string(s)] = 0
	}
	for s, n := range maps.All(census.ByStatus) {
		out[string(s)] = n
	}
	return out, census.Total, err
}

// sameFile reports whether two users files were read from the same path:
// only then are their differences changes made to users (another file is
// another user base).
func sameFile(a, b *state.Users) bool {
	return a != nil && b != nil && a.Path() == b.Path()
}

// factorChanges returns the factor_enrolled and factor_removed events that
// turn the users file prev into next: factors enabled or disabled, and a
// TOTP secret set, replaced or removed (factor ChallengeOMATOTP). Users
// added or removed bring their factors with them.
func factorChanges(prev, next *state.Users) []handlers.Event {
	if prev == nil || next == nil {
		return nil
	}
	var out []handlers.Event
	event := func(name string, u state.User, factor string) {
		out = append(out, handlers.Event{Name: name, UserKey: u.ID, Login: u.Login, Family: "users_file", Factor: factor})
	}
	before := map[string]state.User{}
	for _, u := range prev.All() {
		before[u.ID] = u
	}
	for _, u := range next.All() {
		old, known := before[u.ID]
		delete(before, u.ID)
		for _, f := range u.Factors {
			if !known || !old.HasFactor(f) {
				event(handlers.EventFactorEnrolled, u, f)
			} else if f == state.FactorTOTP && old.TOTPSecret != u.TOTPSecret && u.TOTPSecret != "" {
				event(handlers.EventFactorEnrolled, u, f) // a new authenticator
			}
		}
		for _, f := range old.Factors {
			if known && !u.HasFactor(f) {
				event(handlers.EventFactorRemoved, u, f)
			}
		}
	}
	for _, old := range prev.All() {
		if _, gone := before[old.ID]; gone {
			for _, f := range old.Factors {
				event(handlers.EventFactorRemoved, old, f)
			}
		}
	}
	return out
}
