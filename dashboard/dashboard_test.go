package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/beanspike/beanspike"
)

func TestNewRejectsBadOptions(t *testing.T) {
	q := newStore(t)
	cases := []struct {
		name string
		q    beanspike.Queue
		opts []Option
	}{
		{"nil queue", nil, nil},
		{"empty token", q, []Option{WithToken("")}},
		{"nil token func", q, []Option{WithTokenFunc(nil)}},
		{"relative prefix", q, []Option{WithPrefix("ui/")}},
		{"empty prefix", q, []Option{WithPrefix("")}},
		{"unclean prefix", q, []Option{WithPrefix("/a/../ui/")}},
		{"double slash prefix", q, []Option{WithPrefix("/a//ui/")}},
		{"prefix with query", q, []Option{WithPrefix("/ui?x=1")}},
		{"zero timeout", q, []Option{WithTimeout(0)}},
		{"negative timeout", q, []Option{WithTimeout(-time.Second)}},
		{"zero body limit", q, []Option{WithBodyLimit(0)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := New(c.q, c.opts...)
			if !errors.Is(err, beanspike.ErrInvalidArgument) || h != nil {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidArgument", h, err)
			}
		})
	}
	// The last token option wins, so a valid one after an empty one is
	// accepted, and the other way round is not.
	if _, err := New(q, WithToken(""), WithToken("x")); err != nil {
		t.Errorf("New with a valid token after an empty one: %v", err)
	}
	if _, err := New(q, WithToken("x"), WithToken("")); err == nil {
		t.Error("New with an empty token after a valid one: no error")
	}
	for _, p := range []string{"/", "/ui", "/ui/", "/a/b/"} {
		h, err := New(q, WithPrefix(p))
		if err != nil {
			t.Errorf("New(WithPrefix(%q)): %v", p, err)
			continue
		}
		if got := h.(*handler).prefix; !strings.HasSuffix(got, "/") || !strings.HasPrefix(got, "/") {
			t.Errorf("prefix %q became %q", p, got)
		}
	}
}

func TestOverview(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	put(t, q, "emails", "a")
	put(t, q, "emails", "b", beanspike.WithPriority(1))
	put(t, q, "emails", "c", beanspike.WithDelay(time.Hour))
	bury(t, q, put(t, q, "emails", "d"))
	put(t, q, "sms", "e")
	if err := q.PauseTube(context.Background(), "sms", time.Hour); err != nil {
		t.Fatal(err)
	}

	res := get(t, h, "/")
	wantCode(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	rows := elements(t, res.Body, "tr")
	got := map[string][]string{}
	for _, r := range rows {
		name := attr(r, "data-tube")
		if name == "" {
			continue
		}
		var cells []string
		for c := r.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode {
				cells = append(cells, text(c))
			}
		}
		got[name] = cells
	}
	want := map[string][]string{
		// tube, ready, urgent, reserved, delayed, buried, waiting, paused, put, put/s
		"emails": {"emails", "2", "1", "0", "1", "1", "0", "no", "4", "–"},
		"sms":    {"sms", "1", "0", "0", "0", "0", "0", "yes, 1h0m0s left", "1", "–"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
	wantContains(t, res, `href="/tube?name=emails"`, `src="/static/dashboard.js"`)

	// An empty store says so.
	res = get(t, newDash(t, newStore(t)), "/")
	wantCode(t, res, http.StatusOK)
	wantContains(t, res, "The store has no tubes.")
}

func TestTubesJSON(t *testing.T) {
	q := newStore(t)
	c := newClock()
	h := newDash(t, q).useClock(c)
	for range 10 {
		put(t, q, "a", "x")
	}
	put(t, q, "b", "x", beanspike.WithDelay(time.Minute))

	decode := func(res response) overviewData {
		t.Helper()
		wantCode(t, res, http.StatusOK)
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var d overviewData
		if err := json.Unmarshal([]byte(res.Body), &d); err != nil {
			t.Fatalf("%v in %s", err, res.Body)
		}
		return d
	}
	d := decode(get(t, h, "/api/tubes"))
	if len(d.Tubes) != 2 || d.Tubes[0].Name != "a" || d.Tubes[0].Ready != 10 || d.Tubes[0].TotalJobs != 10 ||
		d.Tubes[1].Name != "b" || d.Tubes[1].Delayed != 1 || d.Tubes[0].PutRate != nil {
		t.Fatalf("first JSON: %+v", d)
	}
	if !strings.Contains(get(t, h, "/api/tubes").Body, `"putRate":null`) {
		t.Error("an unknown rate is not null in the JSON")
	}

	// 20 more jobs in two seconds: 10 jobs/s.
	for range 20 {
		put(t, q, "a", "x")
	}
	c.add(2 * time.Second)
	d = decode(get(t, h, "/api/tubes"))
	if r := d.Tubes[0].PutRate; r == nil || *r != 10 {
		t.Fatalf("rate of a = %v, want 10", r)
	}
	if r := d.Tubes[1].PutRate; r == nil || *r != 0 {
		t.Fatalf("rate of b = %v, want 0", r)
	}
	// A refresh less than a second later shows the same rate.
	put(t, q, "a", "x")
	c.add(100 * time.Millisecond)
	if r := decode(get(t, h, "/api/tubes")).Tubes[0].PutRate; r == nil || *r != 10 {
		t.Fatalf("rate of a 100ms later = %v, want 10 again", r)
	}
	// The overview shows it too.
	wantContains(t, get(t, h, "/"), `<td class="n">10.0</td>`)

	// A tube deleted and made again starts over.
	if _, err := q.DeleteTube(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	put(t, q, "a", "x")
	c.add(5 * time.Second)
	if r := decode(get(t, h, "/api/tubes")).Tubes[0].PutRate; r != nil {
		t.Fatalf("rate of a new tube a = %v, want unknown", *r)
	}
	c.add(4 * time.Second)
	for range 2 {
		put(t, q, "a", "x")
	}
	if r := decode(get(t, h, "/api/tubes")).Tubes[0].PutRate; r == nil || *r != 0.5 {
		t.Fatalf("rate of the new a = %v, want 0.5", r)
	}
}

func TestRateTrackerForgetsDeletedTubes(t *testing.T) {
	var rt rateTracker
	rt.init()
	now := time.Unix(100, 0)
	rt.observe(now, []*beanspike.TubeStats{{Name: "a", TotalJobs: 1}, {Name: "b", TotalJobs: 1}}, true)
	rt.observe(now, []*beanspike.TubeStats{{Name: "a", TotalJobs: 1}}, false)
	if len(rt.last) != 2 {
		t.Fatalf("a partial observation forgot tubes: %v", rt.last)
	}
	rt.observe(now, []*beanspike.TubeStats{{Name: "a", TotalJobs: 1}}, true)
	if _, ok := rt.last["b"]; ok || len(rt.last) != 1 {
		t.Fatalf("a full observation kept a tube that is gone: %v", rt.last)
	}
	// A clock that goes back starts over instead of giving a negative rate.
	if r := rt.observe(now.Add(-time.Hour), []*beanspike.TubeStats{{Name: "a", TotalJobs: 5}}, true)[0]; r != nil {
		t.Fatalf("rate after the clock went back = %v", *r)
	}
}

func TestTubePage(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	ready := put(t, q, "work", "ready body", beanspike.WithPriority(3))
	put(t, q, "work", "second ready")
	delayed := put(t, q, "work", "delayed body", beanspike.WithDelay(time.Hour))
	buried := put(t, q, "work", "buried body")
	bury(t, q, buried)

	res := get(t, h, "/tube?name=work")
	wantCode(t, res, http.StatusOK)
	for state, id := range map[string]beanspike.ID{"ready": ready, "delayed": delayed, "buried": buried} {
		sec, ok := byID(t, res.Body, "next-"+state)
		if !ok || !strings.Contains(sec, fmt.Sprintf("Job %d", id)) || !strings.Contains(sec, state+" body") {
			t.Errorf("section of the next %s job (want job %d): %q", state, id, sec)
		}
	}
	wantContains(t, res, "failed &lt;b&gt;twice&lt;/b&gt;", fmt.Sprintf(`href="/job?id=%d"`, ready))
	// Kick and pause forms, delete forms for each job, kick-job for the
	// delayed and buried ones only.
	findForm(t, res.Body, "/kick", "tube", "work")
	findForm(t, res.Body, "/pause", "tube", "work")
	findForm(t, res.Body, "/delete-tube", "tube", "work")
	for _, id := range []beanspike.ID{ready, delayed, buried} {
		findForm(t, res.Body, "/delete-job", "id", id.String())
	}
	for _, f := range parseForms(t, res.Body) {
		if f.Action == "/kick-job" && f.Fields.Get("id") == ready.String() {
			t.Error("a ready job has a kick form")
		}
		if f.Action == "/resume" {
			t.Error("a tube that is not paused has a resume form")
		}
	}

	// A tube with nothing ready says so.
	if err := q.PauseTube(context.Background(), "idle", time.Minute); err != nil {
		t.Fatal(err)
	}
	res = get(t, h, "/tube?name=idle")
	wantCode(t, res, http.StatusOK)
	for _, state := range []string{"ready", "delayed", "buried"} {
		if sec, _ := byID(t, res.Body, "next-"+state); !strings.Contains(sec, "No "+state+" job.") {
			t.Errorf("empty %s section: %q", state, sec)
		}
	}
	findForm(t, res.Body, "/resume", "tube", "idle")

	// A tube name with characters that need escaping in a URL.
	put(t, q, "a/b;c$(d)+e", "x")
	res = get(t, h, "/tube?"+url.Values{"name": {"a/b;c$(d)+e"}}.Encode())
	wantCode(t, res, http.StatusOK)
	findForm(t, res.Body, "/kick", "tube", "a/b;c$(d)+e")

	wantCode(t, get(t, h, "/tube?name=nosuch"), http.StatusNotFound)
	for _, bad := range []string{"/tube", "/tube?name=", "/tube?name=-x", "/tube?name=%3Cscript%3E", "/tube?name=" + strings.Repeat("x", 201)} {
		res := get(t, h, bad)
		wantCode(t, res, http.StatusBadRequest)
		if strings.Contains(res.Body, "<script>") {
			t.Errorf("%s: the bad name is not escaped", bad)
		}
	}
}

func TestJobPage(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	id := put(t, q, "work", "hello", beanspike.WithPriority(7), beanspike.WithTTR(time.Minute))
	res := get(t, h, "/job?id="+id.String())
	wantCode(t, res, http.StatusOK)
	if s, _ := byID(t, res.Body, "state"); s != "ready" {
		t.Errorf("state %q", s)
	}
	stats, _ := byID(t, res.Body, "job-stats")
	for _, want := range []string{"work", "Priority7", "TTR1m0s", "Reserves0", "Size5 bytes"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lack %q: %q", want, stats)
		}
	}
	if b, _ := byID(t, res.Body, "job-body"); !strings.Contains(b, "hello") {
		t.Errorf("body %q", b)
	}
	findForm(t, res.Body, "/delete-job", "id", id.String())
	if _, ok := byID(t, res.Body, "kick-job-form"); ok {
		t.Error("a ready job has a kick form")
	}

	// A reserved job is shown too, with its reservation.
	if _, err := q.ReserveJob(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	res = get(t, h, "/job?id="+id.String())
	wantCode(t, res, http.StatusOK)
	if s, _ := byID(t, res.Body, "state"); s != "reserved" {
		t.Errorf("state %q", s)
	}

	wantCode(t, get(t, h, "/job?id=999"), http.StatusNotFound)
	for _, bad := range []string{"/job", "/job?id=0", "/job?id=-1", "/job?id=abc", "/job?id=1.5", "/job?id=99999999999999999999"} {
		wantCode(t, get(t, h, bad), http.StatusBadRequest)
	}
}

// action is one of the dashboard's actions, for table tests.
type action struct {
	name string
	// setup makes the jobs and returns the page whose form starts the
	// action, the form's field that picks it and its value, fields to
	// set, and a check that the action was done (or, with done false,
	// that nothing changed).
	setup func(t *testing.T, q beanspike.Queue) (page, key, val string, set []string, check func(t *testing.T, done bool))
	// redirect is the start of the address the action redirects to.
	redirect string
}

var actions = []action{
	{"kick", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		for range 3 {
			bury(t, q, put(t, q, "work", "x"))
		}
		return "/tube?name=work", "tube", "work", []string{"n", "2"}, func(t *testing.T, done bool) {
			st := tubeStats(t, q, "work")
			want := 3
			if done {
				want = 1
			}
			if st.Buried != want || st.Ready != 3-want {
				t.Errorf("after kick (done %v): %d buried, %d ready", done, st.Buried, st.Ready)
			}
		}
	}, "/tube?done=kick&n=2&name=work"},
	{"kick-job", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		id := put(t, q, "work", "x", beanspike.WithDelay(time.Hour))
		return "/job?id=" + id.String(), "id", id.String(), nil, func(t *testing.T, done bool) {
			want := beanspike.Delayed
			if done {
				want = beanspike.Ready
			}
			if got := jobState(t, q, id); got != want {
				t.Errorf("job state %s, want %s", got, want)
			}
		}
	}, "/job?done=kick-job&id="},
	{"pause", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		put(t, q, "work", "x")
		return "/tube?name=work", "tube", "work", []string{"duration", "90s"}, func(t *testing.T, done bool) {
			st := tubeStats(t, q, "work")
			if done != (st.PauseLeft > 80*time.Second && st.Pause == 90*time.Second) || done != (st.Pauses == 1) {
				t.Errorf("after pause (done %v): pause %s, %s left, %d pauses", done, st.Pause, st.PauseLeft, st.Pauses)
			}
		}
	}, "/tube?done=pause&name=work"},
	{"resume", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		put(t, q, "work", "x")
		if err := q.PauseTube(context.Background(), "work", time.Hour); err != nil {
			t.Fatal(err)
		}
		return "/tube?name=work", "tube", "work", nil, func(t *testing.T, done bool) {
			st := tubeStats(t, q, "work")
			if done != (st.PauseLeft == 0) || done != (st.Pauses == 2) {
				t.Errorf("after resume (done %v): %s left, %d pauses", done, st.PauseLeft, st.Pauses)
			}
		}
	}, "/tube?done=resume&name=work"},
	{"delete-job", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		id := put(t, q, "work", "x")
		keep := put(t, q, "work", "y")
		return "/job?id=" + id.String(), "id", id.String(), nil, func(t *testing.T, done bool) {
			_, err := q.StatsJob(context.Background(), id)
			if done != errors.Is(err, beanspike.ErrNotFound) {
				t.Errorf("after delete (done %v): StatsJob: %v", done, err)
			}
			jobState(t, q, keep)
		}
	}, "/tube?done=delete-job&name=work"},
	{"delete-tube", func(t *testing.T, q beanspike.Queue) (string, string, string, []string, func(*testing.T, bool)) {
		put(t, q, "work", "x")
		put(t, q, "work", "y", beanspike.WithDelay(time.Hour))
		put(t, q, "other", "z")
		return "/tube?name=work", "tube", "work", nil, func(t *testing.T, done bool) {
			_, err := q.StatsTube(context.Background(), "work")
			if done != errors.Is(err, beanspike.ErrNotFound) {
				t.Errorf("after delete-tube (done %v): StatsTube: %v", done, err)
			}
			tubeStats(t, q, "other")
		}
	}, "/?done=delete-tube&n=2"},
}

// TestActions does every action as a person would: the form of the page,
// then the form of the confirmation page, checking that only the second
// changes the store.
func TestActions(t *testing.T) {
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			q := newStore(t)
			h := newDash(t, q)
			page, key, val, set, check := a.setup(t, q)
			res := get(t, h, page)
			wantCode(t, res, http.StatusOK)
			f := findForm(t, res.Body, "/"+a.name, key, val)
			if f.Fields.Get("confirm") != "" {
				t.Fatal("the page's form confirms already")
			}

			res = f.submit(t, h, set...)
			wantCode(t, res, http.StatusOK)
			check(t, false)
			if q, _ := byID(t, res.Body, "question"); !strings.Contains(q, "?") {
				t.Errorf("confirmation question %q", q)
			}
			cf := findForm(t, res.Body, "/"+a.name, "confirm", "yes")
			for i := 0; i+1 < len(set); i += 2 {
				if set[i] == "duration" {
					continue // sent back in Go's form, 1m30s
				}
				if got := cf.Fields.Get(set[i]); got != set[i+1] {
					t.Errorf("confirmation sends %s=%q, want %q", set[i], got, set[i+1])
				}
			}
			cancel, _ := byID(t, res.Body, "cancel")
			if cancel == "" {
				t.Error("the confirmation page has no way back")
			}

			res = cf.submit(t, h)
			wantCode(t, res, http.StatusSeeOther)
			loc := res.Header.Get("Location")
			if !strings.HasPrefix(loc, a.redirect) {
				t.Errorf("redirect to %q, want %q...", loc, a.redirect)
			}
			check(t, true)

			// The page redirected to tells what was done.
			res = get(t, h, loc)
			wantCode(t, res, http.StatusOK)
			if n, _ := byID(t, res.Body, "notice"); n == "" {
				t.Errorf("no notice at %s", loc)
			}
		})
	}
}

// TestActionsRejectBadForms sends every action a form without the form
// token, with a wrong one, with one of another dashboard, from another
// site, and as a GET: each is refused and changes nothing.
func TestActionsRejectBadForms(t *testing.T) {
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			q := newStore(t)
			h := newDash(t, q)
			other := newDash(t, q)
			page, key, val, set, check := a.setup(t, q)
			f := findForm(t, get(t, h, page).Body, "/"+a.name, key, val)
			set = append(set, "confirm", "yes")

			for _, c := range []struct {
				name  string
				token string
				hdr   http.Header
				code  int
			}{
				{"no token", "", nil, http.StatusForbidden},
				{"wrong token", "x" + h.csrf, nil, http.StatusForbidden},
				{"other dashboard's token", other.csrf, nil, http.StatusForbidden},
				{"cross-site", h.csrf, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
				{"other origin", h.csrf, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
			} {
				v := url.Values{}
				for k, vs := range f.Fields {
					v[k] = vs
				}
				for i := 0; i+1 < len(set); i += 2 {
					v.Set(set[i], set[i+1])
				}
				v.Set("csrf", c.token)
				res := req{method: http.MethodPost, target: f.Action, form: v, header: c.hdr}.send(t, h)
				if res.Code != c.code {
					t.Errorf("%s: status %d, want %d", c.name, res.Code, c.code)
				}
				if c.code == http.StatusForbidden && !strings.Contains(res.Body, "reload the page") {
					t.Errorf("%s: the page does not say what to do: %s", c.name, res.Body)
				}
				check(t, false)
			}

			// GET is not allowed, even with every field right.
			v := url.Values{}
			for k, vs := range f.Fields {
				v[k] = vs
			}
			for i := 0; i+1 < len(set); i += 2 {
				v.Set(set[i], set[i+1])
			}
			res := get(t, h, f.Action+"?"+v.Encode())
			wantCode(t, res, http.StatusMethodNotAllowed)
			if res.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q", res.Header.Get("Allow"))
			}
			check(t, false)

			// A same-origin request with the token still works.
			res = req{method: http.MethodPost, target: f.Action, form: v,
				header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}.send(t, h)
			wantCode(t, res, http.StatusSeeOther)
			check(t, true)
		})
	}
}

func TestActionsRejectBadInput(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	for range 2 {
		bury(t, q, put(t, q, "work", "x"))
	}
	id := put(t, q, "work", "x", beanspike.WithDelay(time.Hour))
	base := url.Values{"csrf": {h.csrf}, "confirm": {"yes"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		action string
		form   url.Values
		code   int
	}{
		{"kick", with("tube", "work", "n", "-1"), http.StatusBadRequest},
		{"kick", with("tube", "work", "n", "0"), http.StatusBadRequest},
		{"kick", with("tube", "work", "n", "abc"), http.StatusBadRequest},
		{"kick", with("tube", "work", "n", "1e3"), http.StatusBadRequest},
		{"kick", with("tube", "work", "n", "99999999999999999999999"), http.StatusBadRequest},
		{"kick", with("tube", "work"), http.StatusBadRequest},
		{"kick", with("tube", "", "n", "1"), http.StatusBadRequest},
		{"kick", with("tube", "bad name", "n", "1"), http.StatusBadRequest},
		{"kick", with("tube", "<script>", "n", "1"), http.StatusBadRequest},
		{"kick", with("tube", "nosuch", "n", "1"), http.StatusNotFound},
		{"kick-job", with("id", "0"), http.StatusBadRequest},
		{"kick-job", with("id", "-3"), http.StatusBadRequest},
		{"kick-job", with("id", "x"), http.StatusBadRequest},
		{"kick-job", with(), http.StatusBadRequest},
		{"kick-job", with("id", "12345"), http.StatusNotFound},
		{"pause", with("tube", "work", "duration", "-5s"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "0"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "0s"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "-1"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "soon"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "10000h"), http.StatusBadRequest},
		{"pause", with("tube", "work", "duration", "99999999999"), http.StatusBadRequest},
		{"pause", with("tube", "work"), http.StatusBadRequest},
		{"pause", with("tube", "-x", "duration", "1m"), http.StatusBadRequest},
		{"pause", with("tube", "nosuch", "duration", "1m"), http.StatusNotFound},
		{"resume", with("tube", "a b"), http.StatusBadRequest},
		{"resume", with("tube", "nosuch"), http.StatusNotFound},
		{"delete-job", with("id", "0"), http.StatusBadRequest},
		{"delete-job", with("id", "12345"), http.StatusNotFound},
		{"delete-tube", with("tube", ""), http.StatusBadRequest},
		{"delete-tube", with("tube", "nosuch"), http.StatusNotFound},
	}
	before := *tubeStats(t, q, "work")
	for _, c := range cases {
		res := post(t, h, "/"+c.action, c.form)
		if res.Code != c.code {
			t.Errorf("%s %v: status %d, want %d", c.action, c.form, res.Code, c.code)
		}
		if strings.Contains(res.Body, "<script>") {
			t.Errorf("%s %v: input not escaped", c.action, c.form)
		}
		if _, ok := byID(t, res.Body, "error"); !ok {
			t.Errorf("%s %v: no error message", c.action, c.form)
		}
	}
	if after := *tubeStats(t, q, "work"); after != before {
		t.Errorf("bad input changed the tube:\n%+v\n%+v", before, after)
	}
	if jobState(t, q, id) != beanspike.Delayed {
		t.Error("bad input changed a job")
	}
	if _, err := q.StatsTube(context.Background(), "nosuch"); !errors.Is(err, beanspike.ErrNotFound) {
		t.Errorf("an action made a tube: %v", err)
	}
	// Plain seconds work as a pause length.
	res := post(t, h, "/pause", with("tube", "work", "duration", "30"))
	wantCode(t, res, http.StatusSeeOther)
	if st := tubeStats(t, q, "work"); st.Pause != 30*time.Second {
		t.Errorf("pause %s, want 30s", st.Pause)
	}
}

func TestDeleteReservedJobConflicts(t *testing.T) {
	q := newStore(t)
	h := newDash(t, q)
	worker, err := q.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	id := put(t, q, "work", "x")
	if _, err := worker.ReserveJob(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	res := post(t, h, "/delete-job", url.Values{"csrf": {h.csrf}, "confirm": {"yes"}, "id": {id.String()}})
	wantCode(t, res, http.StatusConflict)
	if jobState(t, q, id) != beanspike.Reserved {
		t.Error("the reserved job changed")
	}
}

// failingQueue answers every call with err.
type failingQueue struct {
	beanspike.Queue
	err error
}

func (f failingQueue) Tubes(context.Context) ([]string, error) { return nil, f.err }
func (f failingQueue) StatsTube(context.Context, string) (*beanspike.TubeStats, error) {
	return nil, f.err
}
func (f failingQueue) StatsJob(context.Context, beanspike.ID) (*beanspike.JobStats, error) {
	return nil, f.err
}
func (f failingQueue) Peek(context.Context, beanspike.ID) (*beanspike.Job, error) { return nil, f.err }

// slowQueue blocks on StatsTube until the context is done.
type slowQueue struct{ beanspike.Queue }

func (slowQueue) StatsTube(ctx context.Context, _ string) (*beanspike.TubeStats, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestStoreErrors(t *testing.T) {
	unavailable := fmt.Errorf("%w: connection refused", beanspike.ErrUnavailable)
	closed := newStore(t)
	closed.Close()
	cases := []struct {
		name string
		q    beanspike.Queue
		opts []Option
	}{
		{"unavailable", failingQueue{newStore(t), unavailable}, nil},
		{"closed", closed, nil},
		{"slow", slowQueue{newStore(t)}, []Option{WithTimeout(20 * time.Millisecond)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if sq, ok := c.q.(slowQueue); ok {
				put(t, sq.Queue, "work", "x")
			}
			h := newDash(t, c.q, c.opts...)
			for _, target := range []string{"/", "/tube?name=work", "/job?id=1"} {
				if _, ok := c.q.(slowQueue); ok && target == "/job?id=1" {
					continue
				}
				res := get(t, h, target)
				wantCode(t, res, http.StatusServiceUnavailable)
				if _, ok := byID(t, res.Body, "error"); !ok {
					t.Errorf("%s: no error message", target)
				}
			}
			res := get(t, h, "/api/tubes")
			wantCode(t, res, http.StatusServiceUnavailable)
			var e map[string]string
			if err := json.Unmarshal([]byte(res.Body), &e); err != nil || e["error"] == "" {
				t.Errorf("JSON error %q: %v", res.Body, err)
			}
			res = post(t, h, "/kick", url.Values{"csrf": {h.csrf}, "tube": {"work"}, "n": {"1"}})
			wantCode(t, res, http.StatusServiceUnavailable)
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := newDash(t, newStore(t))
	for _, target := range []string{"/nosuch", "/tube/x", "/static/nosuch.js", "/static/", "/static/a/b", "/api/nosuch"} {
		wantCode(t, get(t, h, target), http.StatusNotFound)
	}
	res := post(t, h, "/", url.Values{"csrf": {h.csrf}})
	wantCode(t, res, http.StatusMethodNotAllowed)
	if res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", res.Header.Get("Allow"))
	}
	res = req{method: http.MethodHead, target: "/"}.send(t, h)
	wantCode(t, res, http.StatusOK)
	wantCode(t, req{method: http.MethodDelete, target: "/tube?name=x"}.send(t, h), http.StatusMethodNotAllowed)
}

func TestPrefix(t *testing.T) {
	q := newStore(t)
	put(t, q, "work", "x")
	h := newDash(t, q, WithPrefix("/ui"))
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	mux.Handle("/ui", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

	res := get(t, mux, "/ui")
	wantCode(t, res, http.StatusMovedPermanently)
	if loc := res.Header.Get("Location"); loc != "/ui/" {
		t.Errorf("redirect to %q", loc)
	}
	res = get(t, mux, "/ui/")
	wantCode(t, res, http.StatusOK)
	wantContains(t, res, `href="/ui/tube?name=work"`, `href="/ui/static/dashboard.css"`, `src="/ui/static/dashboard.js"`, `data-poll="/ui/api/tubes"`)
	res = get(t, mux, "/ui/tube?name=work")
	wantCode(t, res, http.StatusOK)
	f := findForm(t, res.Body, "/ui/kick", "tube", "work")
	res = f.submit(t, mux)
	wantCode(t, res, http.StatusOK)
	cf := findForm(t, res.Body, "/ui/kick", "confirm", "yes")
	res = cf.submit(t, mux)
	wantCode(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/ui/tube?") {
		t.Errorf("redirect to %q", loc)
	}
	wantCode(t, get(t, mux, "/ui/static/dashboard.js"), http.StatusOK)
	wantCode(t, get(t, mux, "/elsewhere"), http.StatusTeapot)
	// Reached directly, a path outside the prefix is not found.
	wantCode(t, get(t, h, "/tube?name=work"), http.StatusNotFound)
}

func TestStaticAndHeaders(t *testing.T) {
	h := newDash(t, newStore(t), WithToken("secret"))
	for path, ct := range map[string]string{"/static/dashboard.js": "text/javascript", "/static/dashboard.css": "text/css"} {
		res := get(t, h, path) // no token needed
		wantCode(t, res, http.StatusOK)
		if !strings.HasPrefix(res.Header.Get("Content-Type"), ct) || len(res.Body) < 100 {
			t.Errorf("%s: %s, %d bytes", path, res.Header.Get("Content-Type"), len(res.Body))
		}
	}
	res := get(t, h, "/")
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

func TestNotice(t *testing.T) {
	q := newStore(t)
	put(t, q, "work", "x")
	h := newDash(t, q)
	for query, want := range map[string]string{
		"done=kick&n=1":        "Kicked 1 job to ready.",
		"done=kick&n=3":        "Kicked 3 jobs to ready.",
		"done=pause":           "Paused the tube.",
		"done=resume":          "Resumed the tube.",
		"done=delete-job":      "Deleted the job.",
		"done=<b>x</b>":        "",
		"done=kick&n=<script>": "Kicked 0 jobs to ready.",
	} {
		res := get(t, h, "/tube?name=work&"+strings.ReplaceAll(query, "<", "%3C"))
		wantCode(t, res, http.StatusOK)
		got, _ := byID(t, res.Body, "notice")
		if got != want {
			t.Errorf("%s: notice %q, want %q", query, got, want)
		}
	}
}
