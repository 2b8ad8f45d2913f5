package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/beanspike/beanspike"
)

// Defaults of the options.
const (
	// DefaultPrefix is the path the handler serves when [WithPrefix] is
	// not given.
	DefaultPrefix = "/"
	// DefaultTimeout bounds the store calls of one request when
	// [WithTimeout] is not given.
	DefaultTimeout = 10 * time.Second
	// DefaultBodyLimit is how many bytes of a job's body a page shows
	// when [WithBodyLimit] is not given.
	DefaultBodyLimit = 1024
	// MaxTubes is how many tubes the overview lists; the rest are counted
	// but not shown.
	MaxTubes = 1000
)

// cookieName is the name of the login cookie.
const cookieName = "beanspike_dashboard"

// An Option configures [New].
type Option func(*config)

type config struct {
	prefix    string
	token     func() string
	emptyTok  bool
	nilFunc   bool
	timeout   time.Duration
	bodyLimit int
}

// WithPrefix sets the path the handler is mounted at, such as "/ui/": it
// serves the paths under it and writes its links under it. Mount it with
// the same pattern, not behind [http.StripPrefix]:
//
//	mux.Handle("/ui/", h) // h made with WithPrefix("/ui/")
//
// A missing trailing slash is added. The prefix must be an absolute, clean
// path. Defaults to [DefaultPrefix].
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithToken protects the dashboard with a fixed token: every request but
// the login form and the static assets must carry it, in an
// "Authorization: Bearer <token>" header or in the cookie the login form
// sets, or it gets 401. The token must not be empty. Without WithToken or
// [WithTokenFunc] the dashboard is open to anyone who can reach it.
func WithToken(token string) Option {
	return func(c *config) {
		c.emptyTok = token == ""
		c.nilFunc = false
		c.token = func() string { return token }
	}
}

// WithTokenFunc protects the dashboard as [WithToken] does, with a token
// that f returns on every request, so that the token can be rotated: a
// login cookie made with an older token stops working when the token
// changes. f must be safe for concurrent use and quick. When f returns
// the empty string every request is refused. The last of WithToken and
// WithTokenFunc given wins.
func WithTokenFunc(f func() string) Option {
	return func(c *config) {
		c.emptyTok = false
		c.nilFunc = f == nil
		c.token = f
	}
}

// WithTimeout bounds the store calls made for one request; a request
// whose calls take longer gets a 503 page. Defaults to [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithBodyLimit sets how many bytes of a job's body the pages show; the
// rest is cut off, and the page says so. Defaults to [DefaultBodyLimit].
func WithBodyLimit(n int) Option { return func(c *config) { c.bodyLimit = n } }

// handler is the dashboard. Its fields are set by New and then only read,
// except rates, which has its own lock.
type handler struct {
	q         beanspike.Queue
	prefix    string
	token     func() string // nil: no token is needed
	timeout   time.Duration
	bodyLimit int

	csrf    string // the form token of this handler, random
	authKey []byte // makes the login cookie's value from the token
	cop     *http.CrossOriginProtection
	static  http.Handler
	rates   rateTracker
	now     func() time.Time
}

// New returns the dashboard of q as an [http.Handler]. It returns an error
// wrapping [beanspike.ErrInvalidArgument] for a nil queue or a bad option
// value, and never changes the store itself: only a person's confirmed
// action does.
//
// The handler is safe for concurrent use. It holds no goroutines; it keeps
// for each tube only the last count of jobs put, for the rates.
func New(q beanspike.Queue, opts ...Option) (http.Handler, error) {
	if q == nil {
		return nil, invalid("nil queue")
	}
	c := config{prefix: DefaultPrefix, timeout: DefaultTimeout, bodyLimit: DefaultBodyLimit}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	prefix, err := cleanPrefix(c.prefix)
	if err != nil {
		return nil, err
	}
	switch {
	case c.emptyTok:
		return nil, invalid("empty token (leave WithToken out for a dashboard without one)")
	case c.nilFunc:
		return nil, invalid("nil token function")
	case c.timeout <= 0:
		return nil, invalid("timeout %s is not positive", c.timeout)
	case c.bodyLimit <= 0:
		return nil, invalid("body limit %d is not positive", c.bodyLimit)
	}
	h := &handler{
		q:         q,
		prefix:    prefix,
		token:     c.token,
		timeout:   c.timeout,
		bodyLimit: c.bodyLimit,
		csrf:      randomString(32),
		authKey:   []byte(randomString(32)),
		cop:       http.NewCrossOriginProtection(),
		static:    http.FileServerFS(staticFS),
		now:       time.Now,
	}
	h.rates.init()
	return h, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("dashboard: %w: %s", beanspike.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// cleanPrefix checks a mount path and gives it a trailing slash.
func cleanPrefix(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#%\\") {
		return "", invalid("prefix %q is not an absolute path", p)
	}
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
		if path.Clean(p) != p {
			return "", invalid("prefix %q is not a clean path", p)
		}
		p += "/"
	}
	return p, nil
}

// randomString returns n random bytes, base64-encoded for URLs.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookieValue is what the login cookie holds for token: a keyed hash of
// it, so that the cookie is not the token, and stops working when the
// token changes or the process restarts.
func (h *handler) cookieValue(token string) string {
	m := hmac.New(sha256.New, h.authKey)
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ServeHTTP routes a request to its page or action.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")

	if r.URL.Path+"/" == h.prefix {
		http.Redirect(w, r, h.prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		h.fail(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
		return
	}
	if strings.HasPrefix(rest, "static/") {
		if !h.method(w, r, http.MethodGet) {
			return
		}
		name := strings.TrimPrefix(rest, "static/")
		if name == "" || strings.Contains(name, "/") {
			h.fail(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
			return
		}
		hd.Set("Cache-Control", "max-age=300")
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/"+name, ""
		h.static.ServeHTTP(w, r2)
		return
	}
	hd.Set("Cache-Control", "no-store")
	switch rest {
	case "login":
		h.login(w, r)
		return
	case "logout":
		h.logout(w, r)
		return
	}
	rt, ok := routes[rest]
	if !ok {
		h.fail(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
		return
	}
	if !h.method(w, r, rt.method) {
		return
	}
	if !h.authorized(r) {
		h.unauthorized(w, r)
		return
	}
	if rt.method == http.MethodPost && !h.checkForm(w, r) {
		return
	}
	rt.serve(h, w, r)
}

type route struct {
	method string
	serve  func(*handler, http.ResponseWriter, *http.Request)
}

// routes maps the paths under the prefix to their handlers.
var routes = map[string]route{
	"":            {http.MethodGet, (*handler).overview},
	"api/tubes":   {http.MethodGet, (*handler).tubesJSON},
	"tube":        {http.MethodGet, (*handler).tube},
	"job":         {http.MethodGet, (*handler).job},
	"kick":        {http.MethodPost, (*handler).kick},
	"kick-job":    {http.MethodPost, (*handler).kickJob},
	"pause":       {http.MethodPost, (*handler).pause},
	"resume":      {http.MethodPost, (*handler).resume},
	"delete-job":  {http.MethodPost, (*handler).deleteJob},
	"delete-tube": {http.MethodPost, (*handler).deleteTube},
}

// method answers 405 unless r uses m (HEAD counts as GET).
func (h *handler) method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	allow := m
	if m == http.MethodGet {
		allow = "GET, HEAD"
	}
	w.Header().Set("Allow", allow)
	h.fail(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address takes "+m+" requests only.")
	return false
}

// errBadForm is the error of a form that is not one of ours: no or a
// wrong form token, or a cross-site request.
var errBadForm = errors.New("the form is out of date or was sent from another site; reload the page and try again")

// checkForm parses a POST form and checks that it comes from a page of
// this dashboard: same origin, and the form token of this handler.
func (h *handler) checkForm(w http.ResponseWriter, r *http.Request) bool {
	if err := h.cop.Check(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "Forbidden", errBadForm.Error())
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	if !equal(r.PostForm.Get("csrf"), h.csrf) {
		h.fail(w, r, http.StatusForbidden, "Forbidden", errBadForm.Error())
		return false
	}
	return true
}
