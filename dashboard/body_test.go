package dashboard

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/beanspike/beanspike"
)

func TestViewBody(t *testing.T) {
	long := strings.Repeat("abcdefgh", 200)  // 1600 bytes
	euro := strings.Repeat("a", 1023) + "€€" // the cut at 1024 falls inside the first €
	cases := []struct {
		name      string
		body      string
		text      bool
		shown     int
		truncated bool
		content   string
	}{
		{"empty", "", true, 0, false, ""},
		{"text", "hello, world", true, 12, false, "hello, world"},
		{"lines and tabs", "a\tb\r\nc\n", true, 7, false, "a\tb\r\nc\n"},
		{"unicode", "grüße, 日本", true, len("grüße, 日本"), false, "grüße, 日本"},
		{"markup stays text", "<script>alert(1)</script>", true, 25, false, "<script>alert(1)</script>"},
		{"NUL", "a\x00b", false, 3, false, hex.Dump([]byte("a\x00b"))},
		{"escape", "a\x1b[31mred", false, 9, false, hex.Dump([]byte("a\x1b[31mred"))},
		{"DEL", "a\x7f", false, 2, false, hex.Dump([]byte("a\x7f"))},
		{"C1 control", "a\u0085b", false, 4, false, hex.Dump([]byte("a\u0085b"))},
		{"bidi override", "abc\u202edcba", false, len("abc\u202edcba"), false, hex.Dump([]byte("abc\u202edcba"))},
		{"invalid UTF-8", "a\xffb", false, 3, false, hex.Dump([]byte("a\xffb"))},
		{"long text", long, true, 1024, true, long[:1024]},
		{"cut inside a character", euro, true, 1023, true, euro[:1023]},
		{"long binary", "\x00" + long, false, 1024, true, hex.Dump([]byte("\x00" + long)[:1024])},
		{"invalid past the cut", long[:1024] + "\xff", true, 1024, true, long[:1024]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := viewBody([]byte(c.body), 1024)
			if v.Size != len(c.body) || v.Text != c.text || v.Shown != c.shown || v.Truncated != c.truncated || v.Content != c.content {
				t.Errorf("viewBody = {Size %d Text %v Shown %d Truncated %v Content %.60q}, want {%d %v %d %v %.60q}",
					v.Size, v.Text, v.Shown, v.Truncated, v.Content, len(c.body), c.text, c.shown, c.truncated, c.content)
			}
			if v.Text && !utf8.ValidString(v.Content) {
				t.Error("text content is not valid UTF-8")
			}
		})
	}
}

func FuzzViewBody(f *testing.F) {
	f.Add([]byte("hello"), 4)
	f.Add([]byte("€€€"), 4)
	f.Add([]byte{0, 1, 2, 0xff}, 2)
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		if limit <= 0 || limit > 1<<16 {
			return
		}
		v := viewBody(body, limit)
		if v.Size != len(body) || v.Shown > limit || v.Shown > len(body) || v.Truncated != (len(body) > limit) {
			t.Fatalf("viewBody(%q, %d) = %+v", body, limit, v)
		}
		if v.Text {
			if !isText([]byte(v.Content)) || !bytes.HasPrefix(body, []byte(v.Content)) || len(v.Content) != v.Shown {
				t.Fatalf("text %q is not a safe prefix of %q", v.Content, body)
			}
		} else if v.Content != hex.Dump(body[:v.Shown]) {
			t.Fatalf("hex of %q is %q", body, v.Content)
		}
	})
}

// TestBodiesOnPages renders bodies of every kind on the job and tube
// pages: markup is escaped and never becomes an element, binary shows as
// hex, long bodies are cut.
func TestBodiesOnPages(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	xss := `</pre><script>alert("x")</script><img src=x onerror=alert(1)>`
	ids := map[string]beanspike.ID{
		"xss":    put(t, q, "bodies", xss),
		"binary": put(t, q, "bodies2", "\x00\x01<script>\xff"),
		"long":   put(t, q, "bodies3", strings.Repeat("z", 5000)),
	}

	res := get(t, h, "/job?id="+ids["xss"].String())
	wantCode(t, res, http.StatusOK)
	if got, _ := byID(t, res.Body, "job-body"); !strings.Contains(got, xss) {
		t.Errorf("the body is not shown as text: %q", got)
	}
	wantContains(t, res, `&lt;/pre&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;`)
	noMarkup(t, res.Body)

	res = get(t, h, "/tube?name=bodies")
	wantCode(t, res, http.StatusOK)
	if got, _ := byID(t, res.Body, "next-ready"); !strings.Contains(got, xss) {
		t.Errorf("the tube page does not show the body as text: %q", got)
	}
	noMarkup(t, res.Body)

	res = get(t, h, "/job?id="+ids["binary"].String())
	wantCode(t, res, http.StatusOK)
	got, _ := byID(t, res.Body, "job-body")
	if !strings.Contains(got, "in hex") || !strings.Contains(got, "00 01 3c 73 63 72 69 70  74 3e ff") || !strings.Contains(got, "|..<script>.|") {
		t.Errorf("binary body: %q", got)
	}
	noMarkup(t, res.Body)

	res = get(t, h, "/job?id="+ids["long"].String())
	wantCode(t, res, http.StatusOK)
	got, _ = byID(t, res.Body, "job-body")
	if !strings.Contains(got, "5000 bytes, the first 1024 shown") || strings.Count(got, "z") != 1024 {
		t.Errorf("long body: %d z's in %.200q", strings.Count(got, "z"), got)
	}

	// WithBodyLimit changes the cut.
	res = get(t, newDash(t, q, WithBodyLimit(10)), "/job?id="+ids["long"].String())
	got, _ = byID(t, res.Body, "job-body")
	if !strings.Contains(got, "the first 10 shown") || strings.Count(got, "z") != 10 {
		t.Errorf("long body with limit 10: %q", got)
	}
}

// noMarkup fails unless the page's only script is the dashboard's own,
// and no element has an event handler.
func noMarkup(t *testing.T, page string) {
	t.Helper()
	for _, s := range elements(t, page, "script") {
		if !strings.HasSuffix(attr(s, "src"), "static/dashboard.js") {
			t.Errorf("a script element that is not the dashboard's: %v", s.Attr)
		}
	}
	if n := len(elements(t, page, "img")); n != 0 {
		t.Errorf("%d img elements", n)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img") {
		t.Error("markup of a body reached the page")
	}
}
