package delivery

import (
	"errors"
	"strings"
)

// Kinds of Message.
const (
	// KindCode is a one-time code, composed by the deliverer's templates.
	KindCode = ""
	// KindNotice is a security notice ("a passkey was added to your
	// account"): its Subject and Text are sent as they are, and it carries
	// no code.
	KindNotice = "notice"
)

// MaxNoticeText bounds a notice's text.
const MaxNoticeText = 4096

// Notice returns a notice message for the mail address to.
func Notice(to, login, subject, text string) Message {
	return Message{Kind: KindNotice, Channel: ChannelEmail, To: to, Login: login, Subject: subject, Text: text}
}

// checkNotice refuses a notice that is malformed (permanently: a retry
// cannot fix it).
func (m Message) checkNotice() error {
	switch {
	case m.Code != "":
		return Permanent(errors.New("a notice carries no code"))
	case m.Subject == "" || m.Text == "":
		return Permanent(errors.New("a notice needs a subject and a text"))
	case strings.ContainsAny(m.Subject, "\r\n"):
		return Permanent(errors.New("a notice's subject is one line"))
	case len(m.Text) > MaxNoticeText:
		return Permanent(errors.New("a notice's text is too long"))
	}
	return nil
}
