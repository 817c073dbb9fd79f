package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"text/template"
	"time"

	"go.uber.org/zap"
)

// Delivery channels of a Message.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Message is a one-time code (or, with Kind KindNotice, a security
// notice; see notice.go) on its way to a user.
type Message struct {
	// Kind is KindCode (the zero value) or KindNotice.
	Kind string
	// Subject and Text are a notice's own subject and body (KindNotice
	// only; a code mail is composed from the deliverer's templates).
	Subject string
	Text    string
	// Channel is ChannelEmail or ChannelSMS.
	Channel string
	// To is the destination: a mail address or a phone number.
	To string
	// Login names the user, for templates.
	Login string
	// Code is the one-time code. It must never be logged.
	Code string
	// ExpiresAt is when the code stops working.
	ExpiresAt time.Time
}

// Deliverer sends a one-time code to its destination. Deliver must honour
// ctx's deadline and must not put the code into the error it returns.
type Deliverer interface {
	Deliver(ctx context.Context, m Message) error
}

// ErrFailed is matched (errors.Is) by every delivery failure; the APIs
// answer it with their channel_comm_error.
var ErrFailed = errors.New("otp delivery failed")

// ErrNoChannel: no deliverer is configured for a message's channel.
var ErrNoChannel = errors.New("no delivery configured for this channel")

// ErrTimeout: the delivery did not finish within the wait allowed to
// the request (it may still succeed in the background).
var ErrTimeout = errors.New("otp delivery did not finish in time")

// Error reports a failed delivery. It matches ErrFailed.
type Error struct {
	Channel string
	Err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("otp delivery by %s failed: %v", e.Channel, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes every Error match ErrFailed.
func (e *Error) Is(target error) bool { return target == ErrFailed }

// permanentError marks a failure that a retry cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that Async does not retry it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// templateData is what subject and body templates see.
type templateData struct {
	Code      string
	ExpiresAt string
	Login     string
}

func render(t *template.Template, m Message) (string, error) {
	var b bytes.Buffer
	err := t.Execute(&b, templateData{Code: m.Code, ExpiresAt: m.ExpiresAt.UTC().Format(time.RFC3339), Login: m.Login})
	if err != nil {
		// A template error names the template, never the data.
		return "", Permanent(fmt.Errorf("rendering template %s: %w", t.Name(), err))
	}
	return b.String(), nil
}

// Router sends each message to the deliverer of its channel.
type Router struct {
	Email Deliverer
	SMS   Deliverer
}

// Deliver implements Deliverer.
func (r Router) Deliver(ctx context.Context, m Message) error {
	var d Deliverer
	switch m.Channel {
	case ChannelEmail:
		d = r.Email
	case ChannelSMS:
		d = r.SMS
	}
	if d == nil {
		return Permanent(fmt.Errorf("%w: %q", ErrNoChannel, m.Channel))
	}
	return d.Deliver(ctx, m)
}

// Has reports whether channel has a deliverer.
func (r Router) Has(channel string) bool {
	switch channel {
	case ChannelEmail:
		return r.Email != nil
	case ChannelSMS:
		return r.SMS != nil
	}
	return false
}

// LogDeliverer writes codes to the log instead of sending them. It is for
// development only: it is the one place where a code appears in a log line,
// and only when explicitly configured; the line is marked unsafe.
type LogDeliverer struct{ Logger *zap.Logger }

// Deliver implements Deliverer.
func (l LogDeliverer) Deliver(_ context.Context, m Message) error {
	if m.Kind == KindNotice {
		l.Logger.Info("notice delivered to the log (development delivery)",
			zap.String("channel", m.Channel), zap.String("login", m.Login), zap.String("subject", m.Subject))
		return nil
	}
	l.Logger.Warn("otp delivered to the log (development delivery, unsafe)",
		zap.Bool("unsafe", true),
		zap.String("channel", m.Channel),
		zap.String("login", m.Login),
		zap.String("otp", m.Code),
		zap.String("expires_at", m.ExpiresAt.UTC().Format(time.RFC3339)))
	return nil
}

// AsyncOptions configures Async.
type AsyncOptions struct {
	// Attempts is the number of tries per message. Default: 3.
	Attempts int
	// Backoff is the pause after the first failed try; it doubles after
	// each further one. Default: 1s.
	Backoff time.Duration
	// AttemptTimeout bounds each try. Default: 10s.
	AttemptTimeout time.Duration
	// Wait is the longest a request waits for the outcome. Default: 5s.
	Wait time.Duration
}

func (o AsyncOptions) defaults() AsyncOptions {
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	return o
}

// Async runs deliveries in the background with bounded retries and lets the
// caller wait at most AsyncOptions.Wait for the outcome. Close stops the
// retries still pending and waits for them.
type Async struct {
	d      Deliverer
	opts   AsyncOptions
	logger *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewAsync wraps d. logger receives failures that finish after the caller
// stopped waiting; it may be nil.
func NewAsync(d Deliverer, opts AsyncOptions, logger *zap.Logger) *Async {
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Async{d: d, opts: opts.defaults(), logger: logger, ctx: ctx, cancel: cancel}
}

// Deliver sends m, retrying on failure, and returns nil once it is sent, an
// *Error if every try failed or ctx ended, or an *Error wrapping ErrTimeout
// if the outcome is not known after Wait.
func (a *Async) Deliver(ctx context.Context, m Message) error {
	done := make(chan error, 1)
	a.wg.Go(func() {
		done <- a.run(m)
	})
	timer := time.NewTimer(a.opts.Wait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return &Error{Channel: m.Channel, Err: err}
		}
		return nil
	case <-timer.C:
		return &Error{Channel: m.Channel, Err: ErrTimeout}
	case <-ctx.Done():
		return &Error{Channel: m.Channel, Err: ctx.Err()}
	}
}

// run tries to deliver m up to Attempts times.
func (a *Async) run(m Message) error {
	backoff := a.opts.Backoff
	var err error
	for i := 0; i < a.opts.Attempts; i++ {
		if i > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-a.ctx.Done():
				t.Stop()
				return err
			}
			backoff *= 2
		}
		actx, cancel := context.WithTimeout(a.ctx, a.opts.AttemptTimeout)
		err = a.d.Deliver(actx, m)
		cancel()
		if err == nil {
			return nil
		}
		a.logger.Debug("otp delivery attempt failed",
			zap.String("channel", m.Channel), zap.Int("attempt", i+1), zap.Error(err))
		if isPermanent(err) || a.ctx.Err() != nil {
			break
		}
	}
	a.logger.Error("otp delivery failed", zap.String("channel", m.Channel),
		zap.Int("attempts", a.opts.Attempts), zap.Error(err))
	return err
}

// Close cancels pending retries and waits for running deliveries to end.
func (a *Async) Close() error {
	a.cancel()
	a.wg.Wait()
	return nil
}

// Interface guards
var (
	_ Deliverer = Router{}
	_ Deliverer = LogDeliverer{}
	_ Deliverer = (*Async)(nil)
)
