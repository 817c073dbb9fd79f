package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SignatureHeader carries the webhook body's HMAC-SHA256 as
// "sha256=<hex>", keyed with the configured secret.
const SignatureHeader = "X-Authsession-Signature"

// WebhookConfig configures WebhookDeliverer.
type WebhookConfig struct {
	// URL receives the POST. Required; http or https.
	URL string
	// Secret keys the signature header. Required.
	Secret string
	// Timeout bounds one request. Default: 10s.
	Timeout time.Duration
	// Client sends the requests. Default: an http.Client with Timeout.
	Client *http.Client
}

// WebhookPayload is the JSON body POSTed to the webhook.
type WebhookPayload struct {
	// Kind is "notice" for a security notice (OTP empty, Subject and
	// Text set); absent for a code.
	Kind      string    `json:"kind,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Text      string    `json:"text,omitempty"`
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	Login     string    `json:"login,omitempty"`
	OTP       string    `json:"otp"`
	ExpiresAt time.Time `json:"expiresAt"`
	SentAt    time.Time `json:"sentAt"`
}

// WebhookDeliverer POSTs codes as JSON to a URL (an SMS gateway, a chat
// bridge), signed with HMAC-SHA256 so the receiver can check the sender.
type WebhookDeliverer struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhookDeliverer checks cfg and returns a deliverer.
func NewWebhookDeliverer(cfg WebhookConfig) (*WebhookDeliverer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may hold a token: do not echo it.
		return nil, errors.New("webhook: url must be an absolute http or https url")
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook: secret is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{Timeout: cfg.Timeout}
	}
	return &WebhookDeliverer{url: cfg.URL, secret: []byte(cfg.Secret), client: c, now: time.Now}, nil
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver implements Deliverer. A 2xx answer is success; 4xx other than 408
// and 429 is permanent; anything else may be retried.
func (w *WebhookDeliverer) Deliver(ctx context.Context, m Message) error {
	p := WebhookPayload{
		Channel: m.Channel, To: m.To, Login: m.Login, OTP: m.Code,
		ExpiresAt: m.ExpiresAt.UTC(), SentAt: w.now().UTC(),
	}
	if m.Kind == KindNotice {
		if err := m.checkNotice(); err != nil {
			return err
		}
		p.Kind, p.Subject, p.Text, p.OTP = KindNotice, m.Subject, m.Text, ""
	}
	body, err := json.Marshal(p)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: encoding payload: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(errors.New("webhook: cannot build request"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which may hold a token; keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("webhook: post failed: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("webhook: receiver answered %d", resp.StatusCode))
	default:
		return fmt.Errorf("webhook: receiver answered %d", resp.StatusCode)
	}
}

var _ Deliverer = (*WebhookDeliverer)(nil)
