package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the plugin's collectors: created once per process and
// registered with each config's registry. Labels never name a user, a
// session or an address.
type metrics struct {
	gate *prometheus.CounterVec
	api  *prometheus.CounterVec
}

var newMetrics = sync.OnceValue(func() *metrics {
	return &metrics{
		gate: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "authsession",
			Name:      "gate_decisions_total",
			Help:      "Requests decided by the authsession gate, by outcome.",
		}, []string{"outcome"}),
		api: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "authsession",
			Name:      "api_requests_total",
			Help:      "Requests served by the authsession API handler, by status code class.",
		}, []string{"code"}),
	}
})

// registerMetrics registers the collectors with reg (nil: none) and
// returns them.
func registerMetrics(reg *prometheus.Registry) *metrics {
	m := newMetrics()
	if reg == nil {
		return m
	}
	for _, c := range []prometheus.Collector{m.gate, m.api} {
		if err := reg.Register(c); err != nil {
			if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); !ok {
				panic(err) // a programming error: conflicting descriptors
			}
		}
	}
	return m
}
