package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// equal compares two secrets in constant time, whatever their lengths.
func equal(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && want != ""
}

// authorized reports whether r may see the dashboard: always when no
// token is set; otherwise when it carries the token in an Authorization
// header, or the login cookie made for it.
func (h *handler) authorized(r *http.Request) bool {
	if h.token == nil {
		return true
	}
	token := h.token()
	if token == "" {
		return false
	}
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, cred, ok := strings.Cut(a, " ")
		return ok && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(cred), token)
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return equal(c.Value, h.cookieValue(token))
	}
	return false
}

// unauthorized answers 401: the login form for a page, a short JSON error
// for the API.
func (h *handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="beanspike dashboard"`)
	if strings.HasPrefix(r.URL.Path, h.prefix+"api/") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	next := ""
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		next = r.URL.RequestURI()
	}
	h.render(w, r, http.StatusUnauthorized, "login", "Log in", loginData{Next: next})
}

type loginData struct {
	Next  string
	Wrong bool
}

// login shows the login form (GET) or checks the token it sends (POST)
// and sets the login cookie: HttpOnly, SameSite=Strict, limited to the
// prefix, and Secure over TLS.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		if !h.method(w, r, http.MethodGet) {
			return
		}
		h.render(w, r, http.StatusOK, "login", "Log in", loginData{Next: h.safeNext(r.URL.Query().Get("next"))})
		return
	}
	if err := h.cop.Check(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "Forbidden", errBadForm.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	next := h.safeNext(r.PostForm.Get("next"))
	if h.token == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := h.token()
	if !equal(r.PostForm.Get("token"), token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="beanspike dashboard"`)
		h.render(w, r, http.StatusUnauthorized, "login", "Log in", loginData{Next: next, Wrong: true})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    h.cookieValue(token),
		Path:     h.prefix,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout clears the login cookie. It is a POST with the form token, like
// every action.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.method(w, r, http.MethodPost) || !h.checkForm(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    "",
		Path:     h.prefix,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, h.prefix+"login", http.StatusSeeOther)
}

// safeNext returns next when it is a path of this dashboard, so that the
// login form redirects nowhere else, and the overview otherwise.
func (h *handler) safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.Scheme != "" || u.Host != "" || u.User != nil ||
		strings.HasPrefix(next, "//") || strings.Contains(next, "\\") ||
		!strings.HasPrefix(u.Path, h.prefix) || strings.HasPrefix(u.Path, h.prefix+"login") {
		return h.prefix
	}
	return next
}
