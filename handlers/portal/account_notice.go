package portal

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// NoticeWait bounds how long a change on the account page waits for its
// notice to be handed over (an asynchronous delivery goes on retrying in
// the background after that).
const NoticeWait = 5 * time.Second

// Changes of the account's factors that are notified to the user (the
// sentences of the notices, no credentials).
const (
	noticePasskeyAdded      = "A passkey was added to your account"     //nolint:gosec // a sentence, not a credential
	noticePasskeyRemoved    = "A passkey was removed from your account" //nolint:gosec // a sentence, not a credential
	noticeTOTPEnrolled      = "An authenticator app was set up for your account"
	noticeTOTPReplaced      = "The authenticator app of your account was replaced"
	noticeTOTPRemoved       = "The authenticator app of your account was removed"
	noticeRecoveryCodes     = "New recovery codes were made for your account (the old ones no longer work)"
	noticeBrowserForgotten  = "A trusted browser of your account was forgotten"
	noticeBrowsersForgotten = "The trusted browsers of your account were forgotten"
)

// notify mails the user a notice of change (one of the notice*
// sentences), made now from the request's client, through the portal's
// delivery when the user has a mail address and mail can be sent. The
// notice names no secret or code. A failure is logged: the change stands.
func (p *Portal) notify(r *http.Request, u state.User, change string) {
	if u.Mail == "" || !p.canDeliver(delivery.ChannelEmail) {
		return
	}
	when := p.Env.Now().UTC().Format("2006-01-02 15:04 UTC")
	from := p.clientIP(r)
	if from == "" {
		from = "an unknown address"
	}
	title := p.Title
	if title == "" {
		title = "your sign-in"
	}
	text := fmt.Sprintf("Hello %s,\n\n%s at %s from %s.\n\n"+
		"If this was you, there is nothing to do.\n"+
		"If this wasn't you, sign in now, change your password, review the account security page "+
		"(remove any passkey, authenticator app or trusted browser you do not know, make new recovery codes) "+
		"and tell your administrator.\n\n-- %s\n", u.Login, change, when, from, title)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), NoticeWait)
	defer cancel()
	if err := p.Delivery.Deliver(ctx, delivery.Notice(u.Mail, u.Login, "Security notice: "+title, text)); err != nil {
		p.Env.Logger.Warn("portal security notice not delivered", zap.Error(err))
	}
}
