package portal

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

//go:embed templates/*.html
var embedded embed.FS

// pageNames are the pages; each is parsed with layout.html, which
// defines the frame and calls the page's "content" template.
var pageNames = []string{"login", "otp", "logout", "sessions", "error", "account"}

// Pages holds the parsed page templates.
type Pages struct {
	pages map[string]*template.Template
}

// LoadPages parses the embedded templates, each replaced by the file
// of the same name in dir if dir is not empty and has one (layout.html,
// login.html, otp.html, logout.html, sessions.html, error.html).
func LoadPages(dir string) (*Pages, error) {
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("portal template %s: %w", name, err)
			}
		}
		return embedded.ReadFile("templates/" + name)
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("portal templates: %s is not a readable directory", dir)
		}
	}
	layout, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	pp := &Pages{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		page, err := read(name + ".html")
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout.html").Funcs(pageFuncs).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("portal template layout.html: %w", err)
		}
		if _, err := t.New(name + ".html").Parse(string(page)); err != nil {
			return nil, fmt.Errorf("portal template %s.html: %w", name, err)
		}
		pp.pages[name] = t
	}
	return pp, nil
}

var pageFuncs = template.FuncMap{
	// stepup passes the page's data and a field id to the account page's
	// "stepup" template.
	"stepup": func(d pageData, field string) map[string]any {
		return map[string]any{"Account": d.Account, "Field": field}
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}

// pageData is what every template gets.
type pageData struct {
	Title  string
	Logo   string
	Prefix string
	// Page is the page's name (login, otp, ...).
	Page string
	// CSRF is the token for the page's forms (field "csrf").
	CSRF string
	// Redirect is the same-origin target carried through the forms.
	Redirect string
	Error    string
	Notice   string
	// Login is the login typed on the sign-in page, or the signed-in user.
	Login string
	// Name is the signed-in user's display name when the identity store
	// gives one (shown before the login).
	Name string
	// Factors are the second factors to choose from; Factor the one shown.
	Factors []factorChoice
	Factor  string
	// SentTo is the masked address a code was mailed to.
	SentTo   string
	Sessions []sessionRow
	// TrustDays is how long "trust this device" lasts (0: not offered);
	// TrustedDevices the user's trusted browsers (sessions page).
	TrustDays      int
	TrustedDevices int
	// Providers are the sign-in page's "Sign in with" buttons;
	// NoPasswords hides its password form.
	Providers   []providerButton
	NoPasswords bool
	// Passwordless offers the passkey sign-in on the login page.
	Passwordless bool
	// Reauth marks the sign-in page of a fresh sign-in asked for by a
	// gate; Need is the factor it needs (a require_factor the portal can
	// ask for, see neededFactor), if any.
	Reauth bool
	Need   string
	// Account is the account page's content.
	Account *accountData
}

type factorChoice struct {
	// Key is "email", "sms" or "totp".
	Key   string
	Label string
}

type sessionRow struct {
	Index      string
	Current    bool
	Created    time.Time
	LastAccess time.Time
	IP         string
	Status     string
	Factors    string
}

// render writes page with status. Rendering into a buffer first means a
// template error answers a clean 500.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) {
	d.Title, d.Logo, d.Prefix, d.Page = p.Title, p.Logo, p.Prefix, page
	if page == "login" && len(p.OIDC) > 0 {
		d.Providers, d.NoPasswords = p.oidcButtons(d.Redirect, d.Reauth), p.NoPasswords
	}
	if d.CSRF == "" {
		d.CSRF = p.csrfToken(w, r)
	}
	var b bytes.Buffer
	if err := p.Pages.pages[page].Execute(&b, d); err != nil {
		p.Env.Logger.Error("portal page failed to render", zap.String("page", page), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail renders the error page.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.render(w, r, status, "error", pageData{Error: msg, Redirect: target(r)})
}
