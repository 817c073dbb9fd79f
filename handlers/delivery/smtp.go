package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"slices"
	"text/template"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of an SMTP connection.
const (
	SMTPTLSNone     = "none"
	SMTPTLSStartTLS = "starttls"
	SMTPTLSImplicit = "tls"
)

// Default mail templates.
const (
	DefaultMailSubject = "Your one-time code"
	DefaultMailBody    = "Hello {{.Login}},\n\nyour one-time code is {{.Code}}\n\nIt is valid until {{.ExpiresAt}}. " +
		"If you did not ask for it, ignore this message.\n"
)

// SMTPConfig configures SMTPDeliverer.
type SMTPConfig struct {
	// Host is the mail server's name or address. Required.
	Host string
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port int
	// TLS is SMTPTLSNone, SMTPTLSStartTLS (the default) or SMTPTLSImplicit.
	TLS string
	// Username and Password enable SMTP authentication when Username is set.
	Username string
	Password string
	// From is the sender address. Required.
	From string
	// Subject and Body are text/template sources that see .Code,
	// .ExpiresAt (RFC 3339) and .Login. Defaults: DefaultMailSubject and
	// DefaultMailBody.
	Subject string
	Body    string
	// Timeout bounds connecting and each SMTP command. Default: 10s.
	Timeout time.Duration
}

// SMTPDeliverer mails codes through an SMTP server with go-mail.
type SMTPDeliverer struct {
	cfg     SMTPConfig
	subject *template.Template
	body    *template.Template
	opts    []gomail.Option
}

// NewSMTPDeliverer checks cfg, parses its templates and returns a
// deliverer. It does not connect.
func NewSMTPDeliverer(cfg SMTPConfig) (*SMTPDeliverer, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is required")
	}
	if cfg.From == "" {
		return nil, errors.New("smtp: from is required")
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: from %q is not a mail address: %w", cfg.From, err)
	}
	if cfg.TLS == "" {
		cfg.TLS = SMTPTLSStartTLS
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultMailSubject
	}
	if cfg.Body == "" {
		cfg.Body = DefaultMailBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	var opts []gomail.Option
	switch cfg.TLS {
	case SMTPTLSNone:
		if cfg.Port == 0 {
			cfg.Port = 25
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case SMTPTLSStartTLS:
		if cfg.Port == 0 {
			cfg.Port = 587
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case SMTPTLSImplicit:
		if cfg.Port == 0 {
			cfg.Port = 465
		}
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("smtp: unknown tls mode %q: allowed values are none, starttls, tls", cfg.TLS)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", cfg.Port)
	}
	opts = append(opts, gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout))
	if cfg.Username != "" {
		// go-mail discovers mechanisms only on a STARTTLS connection it
		// upgraded itself; over implicit TLS (our dialer) and on plain
		// connections (go-mail allows PLAIN there to localhost only) use PLAIN.
		auth := gomail.SMTPAuthPlain
		if cfg.TLS == SMTPTLSStartTLS {
			auth = gomail.SMTPAuthAutoDiscover
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	subject, err := template.New("subject").Option("missingkey=error").Parse(cfg.Subject)
	if err != nil {
		return nil, fmt.Errorf("smtp: subject template: %w", err)
	}
	body, err := template.New("body").Option("missingkey=error").Parse(cfg.Body)
	if err != nil {
		return nil, fmt.Errorf("smtp: body template: %w", err)
	}
	d := &SMTPDeliverer{cfg: cfg, subject: subject, body: body, opts: opts}
	// Render once with sample data so a template that cannot execute
	// (e.g. {{.Nope}}) fails at provision rather than at the first login.
	sample := Message{Code: "000000", ExpiresAt: time.Unix(0, 0), Login: "sample"}
	if _, err := render(d.subject, sample); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if _, err := render(d.body, sample); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return d, nil
}

// Deliver implements Deliverer: one connection per message.
func (d *SMTPDeliverer) Deliver(ctx context.Context, m Message) error {
	if _, err := mail.ParseAddress(m.To); err != nil {
		return Permanent(fmt.Errorf("smtp: destination is not a mail address"))
	}
	subject, body, err := d.compose(m)
	if err != nil {
		return err
	}
	msg := gomail.NewMsg()
	if err := msg.From(d.cfg.From); err != nil {
		return Permanent(fmt.Errorf("smtp: from: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return Permanent(fmt.Errorf("smtp: destination is not a mail address"))
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, body)
	conns := &connSet{}
	defer conns.release()
	opts := append(slices.Clip(d.opts), gomail.WithDialContextFunc(d.dialer(ctx, conns)))
	c, err := gomail.NewClient(d.cfg.Host, opts...)
	if err != nil {
		return Permanent(fmt.Errorf("smtp: client: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: sending to %s:%d: %w", d.cfg.Host, d.cfg.Port, err)
	}
	return nil
}

// dialer returns go-mail's dial function. go-mail does not bound the SMTP
// conversation by the context it is given (a server that accepts and never
// greets would hold the goroutine forever), so the connection gets the
// deadline of ctx (or Timeout) and is closed as soon as ctx ends. In tls mode
// the dialer makes the TLS connection itself.
func (d *SMTPDeliverer) dialer(ctx context.Context, conns *connSet) gomail.DialContextFunc {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(3 * d.cfg.Timeout)
		}
		_ = c.SetDeadline(deadline)
		conns.add(context.AfterFunc(ctx, func() { _ = c.Close() }), c)
		if d.cfg.TLS != SMTPTLSImplicit {
			return c, nil
		}
		tc := tls.Client(c, &tls.Config{ServerName: d.cfg.Host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
}

// connSet remembers the connections of one delivery so that they are closed
// and their context watchers stopped when the delivery returns.
type connSet struct {
	stops []func() bool
	conns []net.Conn
}

func (cs *connSet) add(stop func() bool, c net.Conn) {
	cs.stops = append(cs.stops, stop)
	cs.conns = append(cs.conns, c)
}

func (cs *connSet) release() {
	for _, s := range cs.stops {
		s()
	}
	for _, c := range cs.conns {
		_ = c.Close()
	}
}

var _ Deliverer = (*SMTPDeliverer)(nil)

// compose returns the subject and body of m: a notice's own, or the code
// templates rendered for a code.
func (d *SMTPDeliverer) compose(m Message) (subject, body string, err error) {
	if m.Kind == KindNotice {
		if err := m.checkNotice(); err != nil {
			return "", "", err
		}
		return m.Subject, m.Text, nil
	}
	if subject, err = render(d.subject, m); err != nil {
		return "", "", err
	}
	if body, err = render(d.body, m); err != nil {
		return "", "", err
	}
	return subject, body, nil
}
