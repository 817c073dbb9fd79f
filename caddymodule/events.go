package caddymodule

import (
	"context"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// EventPrefix starts the name of every event the plugin emits through
// Caddy's events app: authsession.session_created, ... Caddy accepts dotted
// event names as they are (lowercased); the events' origin module is the
// authsession app, so a subscription may also select them by module.
const EventPrefix = "authsession."

// AuditLogger is the name of the audit log's logger: one line per event,
// routed by `log { include authsession.audit }`.
const AuditLogger = "authsession.audit"

// auditLog names the audit logger: Caddy's logging picks the logs a
// logger writes to by the ID of the module asking (see caddy.Logging), so
// a logger asked for by this stand-in is named authsession.audit and
// follows the include and exclude lists of the config's logs.
type auditLog struct{}

func (auditLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: AuditLogger, New: func() caddy.Module { return auditLog{} }}
}

// emitter is the app's handlers.Emitter: each event goes to Caddy's events
// app, to the audit log and to the failure counters.
type emitter struct {
	ctx     caddy.Context
	events  *caddyevents.App // nil: none
	audit   *zap.Logger
	metrics *opsMetrics
	// revoked notes the sessions this instance revoked, so the sampler
	// does not report them as expired.
	revoked func(state.Key)
}

// newEmitter builds the emitter of the app provisioned in ctx. An app
// provisioned offline (by a CLI command, in a context that holds no
// configuration) has no events app to reach: its events go to the audit
// log only.
func newEmitter(ctx caddy.Context, m *opsMetrics, logger *zap.Logger, offline bool) *emitter {
	e := &emitter{ctx: ctx, audit: ctx.Logger(auditLog{}), metrics: m}
	if offline {
		return e
	}
	app, err := ctx.App("events")
	if err != nil {
		logger.Warn("no events app: authsession events go to the audit log only", zap.Error(err))
		return e
	}
	e.events = app.(*caddyevents.App)
	return e
}

// Emit implements handlers.Emitter.
func (e *emitter) Emit(_ context.Context, ev handlers.Event) {
	name := EventPrefix + ev.Name
	if e.events != nil && e.events.ShouldEmit(name) {
		e.events.Emit(e.ctx, name, eventData(ev))
	}
	if ce := e.audit.Check(zap.InfoLevel, ev.Name); ce != nil { // no fields built for a level logged nowhere
		ce.Write(auditFields(ev)...)
	}
	e.metrics.observe(ev)
	if ev.Name == handlers.EventSessionRevoked && e.revoked != nil {
		e.revoked(ev.Session)
	}
}

// eventData is the data of ev's Caddy event: only what was set, and the
// session as its short key prefix, never an id.
func eventData(ev handlers.Event) map[string]any {
	data := make(map[string]any, 8)
	for k, v := range eventValues(ev) {
		data[k] = v
	}
	return data
}

// auditFields are the audit line's fields, the same as the event data.
func auditFields(ev handlers.Event) []zap.Field {
	fields := make([]zap.Field, 0, 8)
	fields = append(fields, zap.String("event", EventPrefix+ev.Name))
	for k, v := range eventValues(ev) {
		fields = append(fields, zap.String(k, v))
	}
	return fields
}

// eventValues yields ev's set fields in a fixed order.
func eventValues(ev handlers.Event) func(yield func(string, string) bool) {
	return func(yield func(string, string) bool) {
		var session string
		if ev.Session != (state.Key{}) {
			session = ev.Session.Short()
		}
		for _, kv := range [...][2]string{
			{"user", ev.UserKey},
			{"login", ev.Login},
			{"session", session},
			{"family", ev.Family},
			{"factor", ev.Factor},
			{"reason", ev.Reason},
			{"client_ip", ev.ClientIP},
		} {
			if kv[1] != "" && !yield(kv[0], kv[1]) {
				return
			}
		}
	}
}

var _ handlers.Emitter = (*emitter)(nil)
