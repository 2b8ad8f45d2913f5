package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beanspike/beanspike"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var embedded embed.FS

// staticFS holds the style sheet and the script, served under static/.
var staticFS = mustSub(embedded, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded: a build without it fails its tests
	}
	return s
}

var funcs = template.FuncMap{
	"dur":  fmtDuration,
	"rate": fmtRate,
}

// pages are the templates, each the layout with one page's content.
var pages = func() map[string]*template.Template {
	m := make(map[string]*template.Template)
	for _, name := range []string{"overview", "tube", "job", "confirm", "login", "error"} {
		m[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// page is what every template gets.
type page struct {
	Prefix string
	// CSRF is the form token, for the forms of actions.
	CSRF  string
	Title string
	// Auth tells that a token protects the dashboard, so that a page
	// offers to log out; Login that this is the login page.
	Auth, Login bool
	// Notice tells what the last action did.
	Notice string
	Data   any
}

// render writes a page. It renders into a buffer first, so that a
// failing template gives a clean 500, never half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	p := page{Prefix: h.prefix, Title: title, Auth: h.token != nil, Login: name == "login", Notice: notice(r), Data: data}
	if h.authorized(r) {
		p.CSRF = h.csrf // the login page of an unknown visitor does not get it
	} else {
		p.Auth = false
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Message string
}

// fail writes an error page, or a JSON error under api/.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	if strings.HasPrefix(r.URL.Path, h.prefix+"api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	h.render(w, r, status, "error", title, errorData{Status: status, Message: msg})
}

// failErr writes the error page of a store error: 404 for a job or tube
// not found (with notFound as its message), 400 for bad input, 409 for a
// job that another client holds, 503 for a store that is unavailable,
// closed or too slow, 500 for anything else.
func (h *handler) failErr(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	status, title, msg := http.StatusInternalServerError, "Error", err.Error()
	switch {
	case errors.Is(err, beanspike.ErrNotFound):
		status, title, msg = http.StatusNotFound, "Not found", notFound
	case errors.Is(err, beanspike.ErrInvalidTube), errors.Is(err, beanspike.ErrInvalidArgument):
		status, title = http.StatusBadRequest, "Bad request"
	case errors.Is(err, beanspike.ErrNotReserved):
		status, title, msg = http.StatusConflict, "Job reserved",
			"A client has reserved the job, so it cannot be changed now. Try again when the client is done with it: "+err.Error()
	case errors.Is(err, beanspike.ErrUnavailable), errors.Is(err, beanspike.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		status, title, msg = http.StatusServiceUnavailable, "Store unavailable",
			"The job store did not answer; try again later: "+err.Error()
	}
	h.fail(w, r, status, title, msg)
}

// badRequest writes a 400 page.
func (h *handler) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	h.fail(w, r, http.StatusBadRequest, "Bad request", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// notice is the line that tells what the action a redirect comes from
// did: fixed text by the done parameter, with a count.
func notice(r *http.Request) string {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	switch q.Get("done") {
	case "kick":
		return fmt.Sprintf("Kicked %d %s to ready.", n, plural(n, "job", "jobs"))
	case "kick-job":
		return "Kicked the job to ready."
	case "pause":
		return "Paused the tube."
	case "resume":
		return "Resumed the tube."
	case "delete-job":
		return "Deleted the job."
	case "delete-tube":
		return fmt.Sprintf("Deleted the tube and its %d %s.", n, plural(n, "job", "jobs"))
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// fmtDuration rounds d for reading: to the second from a minute on, to
// the millisecond below.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Minute || d <= -time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second || d <= -time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// fmtRate shows a rate in jobs per second, or a dash while it is not
// known.
func fmtRate(r *float64) string {
	if r == nil {
		return "–"
	}
	return strconv.FormatFloat(*r, 'f', 1, 64)
}
