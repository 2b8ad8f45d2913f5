package dashboard

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// newStore makes an empty memory store, closed when the test ends.
func newStore(t *testing.T) *memory.Queue {
	t.Helper()
	q, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// newDash makes a dashboard of q, failing the test on error.
func newDash(t *testing.T, q beanspike.Queue, opts ...Option) *handler {
	t.Helper()
	h, err := New(q, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h.(*handler)
}

// put puts a job and returns its ID.
func put(t *testing.T, q beanspike.Queue, tube, body string, opts ...beanspike.PutOption) beanspike.ID {
	t.Helper()
	id, err := q.Put(context.Background(), tube, []byte(body), opts...)
	if err != nil {
		t.Fatalf("Put(%q): %v", tube, err)
	}
	return id
}

// bury reserves the job id and buries it.
func bury(t *testing.T, q beanspike.Queue, id beanspike.ID) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.ReserveJob(ctx, id); err != nil {
		t.Fatalf("ReserveJob(%d): %v", id, err)
	}
	if err := q.Bury(ctx, id, 5, "failed <b>twice</b>"); err != nil {
		t.Fatalf("Bury(%d): %v", id, err)
	}
}

func tubeStats(t *testing.T, q beanspike.Queue, tube string) *beanspike.TubeStats {
	t.Helper()
	st, err := q.StatsTube(context.Background(), tube)
	if err != nil {
		t.Fatalf("StatsTube(%q): %v", tube, err)
	}
	return st
}

func jobState(t *testing.T, q beanspike.Queue, id beanspike.ID) beanspike.State {
	t.Helper()
	st, err := q.StatsJob(context.Background(), id)
	if err != nil {
		t.Fatalf("StatsJob(%d): %v", id, err)
	}
	return st.State
}

// response is a finished request.
type response struct {
	Code   int
	Header http.Header
	Body   string
}

// req is a request to send to a handler.
type req struct {
	method, target string
	form           url.Values
	header         http.Header
	cookies        []*http.Cookie
}

func (r req) send(t *testing.T, h http.Handler) response {
	t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr := httptest.NewRequest(r.method, r.target, body)
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range r.header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return response{Code: res.StatusCode, Header: res.Header, Body: string(b)}
}

func get(t *testing.T, h http.Handler, target string) response {
	t.Helper()
	return req{method: http.MethodGet, target: target}.send(t, h)
}

func post(t *testing.T, h http.Handler, target string, form url.Values) response {
	t.Helper()
	return req{method: http.MethodPost, target: target, form: form}.send(t, h)
}

// wantCode fails the test unless res has the status code.
func wantCode(t *testing.T, res response, code int) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", res.Code, code, res.Body)
	}
}

func wantContains(t *testing.T, res response, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(res.Body, s) {
			t.Errorf("body lacks %q; body:\n%s", s, res.Body)
		}
	}
}

// form is an HTML form of a page.
type form struct {
	ID, Action, Method string
	Fields             url.Values
	Buttons            []string
}

// parseForms finds the forms of a page, with their fields' values.
func parseForms(t *testing.T, page string) []form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var forms []form
	var cur *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms = append(forms, form{ID: attr(n, "id"), Action: attr(n, "action"), Method: attr(n, "method"), Fields: url.Values{}})
				cur = &forms[len(forms)-1]
				defer func() { cur = nil }()
			case "input":
				if cur != nil && attr(n, "name") != "" {
					cur.Fields.Add(attr(n, "name"), attr(n, "value"))
				}
			case "button":
				if cur != nil {
					cur.Buttons = append(cur.Buttons, text(n))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return forms
}

// findForm returns the form of page that posts to action, and whose
// field key has the value val when key is not empty.
func findForm(t *testing.T, page, action, key, val string) form {
	t.Helper()
	for _, f := range parseForms(t, page) {
		if f.Action == action && (key == "" || f.Fields.Get(key) == val) {
			return f
		}
	}
	t.Fatalf("no form posting to %s with %s=%q in:\n%s", action, key, val, page)
	return form{}
}

// submit posts a form with changes to its fields.
func (f form) submit(t *testing.T, h http.Handler, set ...string) response {
	t.Helper()
	v := url.Values{}
	for k, vs := range f.Fields {
		v[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(set); i += 2 {
		v.Set(set[i], set[i+1])
	}
	if !strings.EqualFold(f.Method, http.MethodPost) {
		t.Fatalf("form %s posts with method %q", f.Action, f.Method)
	}
	return post(t, h, f.Action, v)
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// elements returns the elements of a page with the tag.
func elements(t *testing.T, page, tag string) []*html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// byID returns the text of the element with the id, and whether there is
// one.
func byID(t *testing.T, page, id string) (string, bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var found *html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if found == nil {
		return "", false
	}
	return text(found), true
}

// clock is a settable time for the rates.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) add(d time.Duration)          { c.t = c.t.Add(d) }
func newClock() *clock                        { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (h *handler) useClock(c *clock) *handler { h.now = c.now; return h }
