package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTokenRejects(t *testing.T) {
	q := newStore(t)
	put(t, q, "work", "x")
	id := put(t, q, "work", "y")
	h := newDash(t, q, WithToken("s3cret"))

	for _, target := range []string{"/", "/tube?name=work", "/job?id=" + id.String(), "/nosuch-but-first-auth"} {
		res := get(t, h, target)
		if target == "/nosuch-but-first-auth" {
			wantCode(t, res, http.StatusNotFound) // unknown paths say nothing more
			continue
		}
		wantCode(t, res, http.StatusUnauthorized)
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", target)
		}
		f := findForm(t, res.Body, "/login", "", "")
		if f.Fields.Get("next") != target {
			t.Errorf("%s: the login form goes on to %q", target, f.Fields.Get("next"))
		}
		if strings.Contains(res.Body, h.csrf) || strings.Contains(res.Body, "work") && target == "/" {
			t.Errorf("%s: the login page shows what it should not", target)
		}
	}
	res := get(t, h, "/api/tubes")
	wantCode(t, res, http.StatusUnauthorized)
	var e map[string]string
	if err := json.Unmarshal([]byte(res.Body), &e); err != nil || e["error"] != "unauthorized" {
		t.Errorf("JSON %q: %v", res.Body, err)
	}

	// Wrong tokens, in every place.
	for _, hdr := range []string{"Bearer s3cre", "Bearer s3cret2", "Bearer ", "Basic czNjcmV0", "s3cret", "Bearer S3CRET"} {
		res := req{method: http.MethodGet, target: "/", header: http.Header{"Authorization": {hdr}}}.send(t, h)
		wantCode(t, res, http.StatusUnauthorized)
	}
	for _, c := range []string{"s3cret", "", "x", h.cookieValue("other")} {
		res := req{method: http.MethodGet, target: "/", cookies: []*http.Cookie{{Name: cookieName, Value: c}}}.send(t, h)
		wantCode(t, res, http.StatusUnauthorized)
	}

	// An action without the token changes nothing, even with the form
	// token.
	res = post(t, h, "/delete-job", url.Values{"csrf": {h.csrf}, "id": {id.String()}, "confirm": {"yes"}})
	wantCode(t, res, http.StatusUnauthorized)
	jobState(t, q, id)

	// The right bearer token opens everything.
	bearer := http.Header{"Authorization": {"Bearer s3cret"}}
	for _, target := range []string{"/", "/tube?name=work", "/job?id=" + id.String(), "/api/tubes"} {
		wantCode(t, req{method: http.MethodGet, target: target, header: bearer}.send(t, h), http.StatusOK)
	}
	res = req{method: http.MethodPost, target: "/delete-job", header: bearer,
		form: url.Values{"csrf": {h.csrf}, "id": {id.String()}, "confirm": {"yes"}}}.send(t, h)
	wantCode(t, res, http.StatusSeeOther)
	if _, err := q.Peek(t.Context(), id); err == nil {
		t.Error("the job was not deleted")
	}
	// The bearer token does not replace the form token.
	res = req{method: http.MethodPost, target: "/kick", header: bearer,
		form: url.Values{"tube": {"work"}, "n": {"1"}, "confirm": {"yes"}}}.send(t, h)
	wantCode(t, res, http.StatusForbidden)
}

func TestLogin(t *testing.T) {
	q := newStore(t)
	put(t, q, "work", "x")
	h := newDash(t, q, WithPrefix("/ui/"), WithToken("s3cret"))

	res := get(t, h, "/ui/login?next=/ui/tube%3Fname%3Dwork")
	wantCode(t, res, http.StatusOK)
	f := findForm(t, res.Body, "/ui/login", "", "")
	if f.Fields.Get("next") != "/ui/tube?name=work" {
		t.Errorf("next %q", f.Fields.Get("next"))
	}

	res = f.submit(t, h, "token", "wrong")
	wantCode(t, res, http.StatusUnauthorized)
	if _, ok := byID(t, res.Body, "error"); !ok {
		t.Error("a wrong token is not reported")
	}
	if len(res.Header.Values("Set-Cookie")) != 0 {
		t.Error("a wrong token set a cookie")
	}

	res = f.submit(t, h, "token", "s3cret")
	wantCode(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/ui/tube?name=work" {
		t.Errorf("login goes on to %q", loc)
	}
	cookies, err := http.ParseSetCookie(res.Header.Get("Set-Cookie"))
	if err != nil {
		t.Fatal(err)
	}
	c := cookies
	if c.Name != cookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.Value == "" || strings.Contains(c.Value, "s3cret") {
		t.Errorf("cookie %+v", c)
	}

	withCookie := func(method, target string, form url.Values) response {
		return req{method: method, target: target, form: form, cookies: []*http.Cookie{{Name: c.Name, Value: c.Value}}}.send(t, h)
	}
	res = withCookie(http.MethodGet, "/ui/", nil)
	wantCode(t, res, http.StatusOK)
	lf := findForm(t, res.Body, "/ui/logout", "", "")
	if lf.Fields.Get("csrf") != h.csrf {
		t.Error("the logout form lacks the form token")
	}
	wantCode(t, withCookie(http.MethodGet, "/ui/api/tubes", nil), http.StatusOK)

	// Logging out is a POST with the form token, and clears the cookie.
	wantCode(t, withCookie(http.MethodGet, "/ui/logout", nil), http.StatusMethodNotAllowed)
	wantCode(t, withCookie(http.MethodPost, "/ui/logout", url.Values{}), http.StatusForbidden)
	res = withCookie(http.MethodPost, "/ui/logout", lf.Fields)
	wantCode(t, res, http.StatusSeeOther)
	out, err := http.ParseSetCookie(res.Header.Get("Set-Cookie"))
	if err != nil || out.Name != cookieName || out.MaxAge >= 0 {
		t.Errorf("logout cookie %+v, %v", out, err)
	}

	// Login from another site is refused.
	res = req{method: http.MethodPost, target: "/ui/login", form: url.Values{"token": {"s3cret"}},
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}.send(t, h)
	wantCode(t, res, http.StatusForbidden)
}

func TestLoginNextStaysInside(t *testing.T) {
	h := newDash(t, newStore(t), WithPrefix("/ui/"), WithToken("s3cret"))
	for next, want := range map[string]string{
		"":                         "/ui/",
		"/ui/job?id=3":             "/ui/job?id=3",
		"https://evil.example/ui/": "/ui/",
		"//evil.example/ui/":       "/ui/",
		"/\\evil.example/ui/":      "/ui/",
		"/other/":                  "/ui/",
		"javascript:alert(1)":      "/ui/",
		"/ui/login":                "/ui/",
	} {
		res := post(t, h, "/ui/login", url.Values{"token": {"s3cret"}, "next": {next}})
		wantCode(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != want {
			t.Errorf("next %q: redirect to %q, want %q", next, loc, want)
		}
	}
}

// TestTokenRotation: a cookie made with the old token stops working, and
// a function that returns no token refuses everyone.
func TestTokenRotation(t *testing.T) {
	var token atomic.Value
	token.Store("one")
	h := newDash(t, newStore(t), WithTokenFunc(func() string { return token.Load().(string) }))

	res := post(t, h, "/login", url.Values{"token": {"one"}})
	wantCode(t, res, http.StatusSeeOther)
	c, err := http.ParseSetCookie(res.Header.Get("Set-Cookie"))
	if err != nil {
		t.Fatal(err)
	}
	withCookie := req{method: http.MethodGet, target: "/", cookies: []*http.Cookie{{Name: c.Name, Value: c.Value}}}
	wantCode(t, withCookie.send(t, h), http.StatusOK)

	token.Store("two")
	wantCode(t, withCookie.send(t, h), http.StatusUnauthorized)
	wantCode(t, req{method: http.MethodGet, target: "/", header: http.Header{"Authorization": {"Bearer one"}}}.send(t, h), http.StatusUnauthorized)
	wantCode(t, req{method: http.MethodGet, target: "/", header: http.Header{"Authorization": {"Bearer two"}}}.send(t, h), http.StatusOK)

	token.Store("")
	for _, hdr := range []string{"Bearer ", "Bearer two"} {
		wantCode(t, req{method: http.MethodGet, target: "/", header: http.Header{"Authorization": {hdr}}}.send(t, h), http.StatusUnauthorized)
	}
	wantCode(t, post(t, h, "/login", url.Values{"token": {""}}), http.StatusUnauthorized)
}

func TestNoTokenNeedsNoLogin(t *testing.T) {
	h := newDash(t, newStore(t))
	res := get(t, h, "/")
	wantCode(t, res, http.StatusOK)
	if _, ok := byID(t, res.Body, "logout"); ok {
		t.Error("a dashboard without a token offers to log out")
	}
	res = post(t, h, "/login", url.Values{"token": {"anything"}})
	wantCode(t, res, http.StatusSeeOther)
	if len(res.Header.Values("Set-Cookie")) != 0 {
		t.Error("login without a token set a cookie")
	}
}

func TestEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"x", "x", true}, {"x", "y", false}, {"x", "xx", false}, {"", "", false}, {"a", "", false},
	} {
		if got := equal(c.a, c.b); got != c.want {
			t.Errorf("equal(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
