// Package delivery sends one-time codes to users: by mail through an SMTP
// server (SMTPDeliverer), as an HMAC-signed JSON POST to a webhook, which
// the app uses for SMS (WebhookDeliverer), or into the log for development
// (LogDeliverer). Router sends each Message to the deliverer of its channel
// and Async retries in the background while the request waits a bounded
// time. The OTP and challenge APIs of package handlers and the portal hold
// a Deliverer; this package depends on none of them.
package delivery
