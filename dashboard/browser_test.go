package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/beanspike/beanspike"
)

// chromium finds a Chromium or Chrome binary.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowser drives a real headless Chromium through the dashboard: the
// token login, every action with its confirmation step, a cancelled
// confirmation, the live refresh of the overview, bodies that hold markup,
// and the logout, checking the store after each action. It skips when no
// Chromium is installed, except under CI, where it fails.
func TestBrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium binary in PATH, and CI is set: install Debian's chromium package (.ci/run does)")
		}
		t.Skip("no chromium binary in PATH (apt-get install chromium); the browser test needs one")
	}

	q := newStore(t)
	bg := context.Background()
	for i := range 3 {
		bury(t, q, put(t, q, "emails", fmt.Sprintf("buried %d", i)))
	}
	delayed := put(t, q, "emails", "later", beanspike.WithDelay(time.Hour))
	firstReady := put(t, q, "emails", "first ready", beanspike.WithPriority(1))
	put(t, q, "emails", "second ready")
	put(t, q, "doomed", "a")
	put(t, q, "doomed", "b", beanspike.WithDelay(time.Hour))
	xss := put(t, q, "bodies", `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`)

	const token = "browser-token-0123456789"
	h := newDash(t, q, WithPrefix("/ui/"), WithToken(token))
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ui := srv.URL + "/ui/"

	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Logf("%s started in %s", bin, time.Since(start).Round(time.Millisecond))

	type act = chromedp.Action[chromedp.Void]
	// failed reports where the browser is when a step fails.
	failed := func(name string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", name, loc, err)
	}
	// step runs browser actions within a bounded time.
	step := func(name string, actions ...act) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			failed(name, err)
		}
	}
	textOf := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 15*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			failed("read "+sel, err)
		}
		return s
	}
	click := func(sel string) act { return chromedp.Click(chromedp.CSS(sel)) }
	visible := func(sel string) act { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	// confirm clicks a button that starts an action, checks the
	// confirmation page and confirms.
	confirm := func(name, button, question string) {
		t.Helper()
		step(name+": start", click(button), visible("#confirm"))
		if q := textOf("#question"); !strings.Contains(q, question) {
			t.Fatalf("%s: confirmation asks %q, want %q in it", name, q, question)
		}
		step(name+": confirm", click("#confirm"), visible("#notice"))
	}
	wantNotice := func(want string) {
		t.Helper()
		if got := textOf("#notice"); got != want {
			t.Fatalf("notice %q, want %q", got, want)
		}
	}
	tubePage := func(name string) {
		t.Helper()
		step("open tube "+name, chromedp.Navigate(ui+"tube?name="+name), visible("#delete-tube"))
	}

	// Login: the dashboard answers with the login form; a wrong token is
	// refused, the right one opens the overview.
	step("login page", chromedp.Navigate(ui), visible("#token"))
	step("wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "wrong"),
		click("#login"),
		visible("#error"))
	step("right token",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		click("#login"),
		visible("#tubes"))
	if rows := textOf("#tubes"); !strings.Contains(rows, "emails") || !strings.Contains(rows, "doomed") {
		t.Fatalf("overview: %q", rows)
	}

	// The script refreshes the overview: a new tube shows up without a
	// reload.
	put(t, q, "fresh", "x")
	step("live refresh",
		chromedp.Poll[chromedp.Void](`document.querySelector('#tubes tr[data-tube="fresh"]') !== null && document.querySelector('#live').textContent.startsWith('Live: refreshed')`,
			chromedp.WithPollingTimeout(10*time.Second)))

	// Kick 2 of the 3 buried jobs.
	step("open emails", click(`#tubes a[href="/ui/tube?name=emails"]`), visible("#kick-n"))
	step("kick count", chromedp.SetValue(chromedp.CSS("#kick-n"), "2"))
	confirm("kick", "#kick", "Kick up to 2 jobs")
	wantNotice("Kicked 2 jobs to ready.")
	if st := tubeStats(t, q, "emails"); st.Buried != 1 || st.Ready != 4 {
		t.Fatalf("after kick: %d buried, %d ready; want 1, 4", st.Buried, st.Ready)
	}

	// Kick the delayed job from the tube page.
	confirm("kick job", "#next-delayed .kick-job", fmt.Sprintf("Kick job %d", delayed))
	wantNotice("Kicked the job to ready.")
	if s := jobState(t, q, delayed); s != beanspike.Ready {
		t.Fatalf("after kick job: job %d is %s", delayed, s)
	}

	// Pause for two minutes, then resume.
	tubePage("emails")
	step("pause length", chromedp.SetValue(chromedp.CSS("#pause-duration"), "2m"))
	confirm("pause", "#pause", "Pause tube")
	wantNotice("Paused the tube.")
	if st := tubeStats(t, q, "emails"); st.Pause != 2*time.Minute || st.PauseLeft <= 0 {
		t.Fatalf("after pause: pause %s, %s left", st.Pause, st.PauseLeft)
	}
	if p := textOf("#paused"); !strings.HasPrefix(p, "yes") {
		t.Fatalf("the tube page says paused: %q", p)
	}
	confirm("resume", "#resume", "Resume tube")
	wantNotice("Resumed the tube.")
	if st := tubeStats(t, q, "emails"); st.PauseLeft != 0 || st.Pauses != 2 {
		t.Fatalf("after resume: %s left, %d pauses", st.PauseLeft, st.Pauses)
	}

	// Delete the next ready job, from its own page.
	if j, err := q.PeekReady(bg, "emails"); err != nil || j.ID != firstReady {
		t.Fatalf("next ready job: %v, %v; want %d", j, err, firstReady)
	}
	step("open job", click(fmt.Sprintf(`#next-ready a[href="/ui/job?id=%d"]`, firstReady)), visible("#delete-job"))
	if s := textOf("#state"); s != "ready" {
		t.Fatalf("job page state %q", s)
	}
	confirm("delete job", "#delete-job", fmt.Sprintf("Delete job %d", firstReady))
	wantNotice("Deleted the job.")
	if _, err := q.StatsJob(bg, firstReady); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("after delete job: StatsJob: %v", err)
	}

	// Cancel the deletion of a tube, then delete it.
	tubePage("doomed")
	step("cancel delete tube",
		click("#delete-tube"),
		visible("#cancel"),
		click("#cancel"),
		visible("#delete-tube"))
	if st := tubeStats(t, q, "doomed"); st.Ready+st.Delayed != 2 {
		t.Fatalf("after a cancelled delete: %+v", st)
	}
	confirm("delete tube", "#delete-tube", `Delete tube "doomed"`)
	wantNotice("Deleted the tube and its 2 jobs.")
	if _, err := q.StatsTube(bg, "doomed"); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("after delete tube: StatsTube: %v", err)
	}

	// A body that holds markup is shown as text and runs nothing.
	step("markup body", chromedp.Navigate(fmt.Sprintf("%sjob?id=%d", ui, xss)), visible("#job-body"), chromedp.Sleep(200*time.Millisecond))
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		failed("title", err)
	}
	body := textOf("#job-body pre")
	if title == "pwned" || !strings.Contains(body, `<script>document.title="pwned"</script>`) {
		t.Fatalf("markup body: title %q, body %q", title, body)
	}
	elems, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('#job-body script, #job-body img').length`))
	if err != nil {
		failed("count markup", err)
	}
	if elems != 0 {
		t.Fatalf("the body made %d elements", elems)
	}

	// Logging out: the dashboard asks for the token again.
	step("logout", click("#logout"), visible("#token"))
	step("after logout", chromedp.Navigate(ui), visible("#token"))
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}
