package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beanspike/beanspike"
)

// Every action is a POST of a form that carries the form token. Without
// confirm=yes it changes nothing and answers the confirmation page, whose
// form sends the same fields again with confirm=yes; with it, the action
// is done and the answer redirects (303) to the page it was started from,
// which tells what was done.

// field is one form field.
type field struct{ Name, Value string }

// confirmData is the confirmation page of an action.
type confirmData struct {
	// Action is the path of the action under the prefix.
	Action   string
	Question string
	// Details describe what the action acts on.
	Details []field
	// Fields are sent again with the confirmation.
	Fields []field
	Button string
	// Back is the page to go back to without doing anything.
	Back string
}

func confirmed(r *http.Request) bool { return r.PostForm.Get("confirm") == "yes" }

func (h *handler) confirm(w http.ResponseWriter, r *http.Request, d confirmData) {
	h.render(w, r, http.StatusOK, "confirm", "Confirm: "+d.Button, d)
}

// formTube reads and checks the tube field, or answers 400.
func (h *handler) formTube(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PostForm.Get("tube")
	if err := beanspike.ValidateTube(name); err != nil {
		h.badRequest(w, r, err.Error())
		return "", false
	}
	return name, true
}

// tubeStats gets a tube's stats, or answers its error page. Actions look
// the tube up first so that they act on no tube that does not exist
// (PauseTube would make one).
func (h *handler) tubeStats(w http.ResponseWriter, r *http.Request, name string) (*beanspike.TubeStats, bool) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	st, err := h.q.StatsTube(ctx, name)
	if err != nil {
		h.failErr(w, r, err, fmt.Sprintf("There is no tube %q: it was never used, or it was deleted.", name))
		return nil, false
	}
	return st, true
}

// jobStats reads the id field and gets the job's stats, or answers the
// error page.
func (h *handler) jobStats(w http.ResponseWriter, r *http.Request) (*beanspike.JobStats, bool) {
	id, ok := h.jobID(w, r, r.PostForm.Get("id"))
	if !ok {
		return nil, false
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	st, err := h.q.StatsJob(ctx, id)
	if err != nil {
		h.failErr(w, r, err, fmt.Sprintf("There is no job %d: it was never put, or it was deleted.", id))
		return nil, false
	}
	return st, true
}

func itoa(n int) string { return strconv.Itoa(n) }

// act shows the confirmation page c until the request confirms it; then
// it runs do within the request's time limit and redirects to the page
// do names, or shows do's failure, with gone as the message of a missing
// job or tube.
func (h *handler) act(w http.ResponseWriter, r *http.Request, c confirmData, gone string, do func(context.Context) (string, error)) {
	if !confirmed(r) {
		h.confirm(w, r, c)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	next, err := do(ctx)
	if err != nil {
		h.failErr(w, r, err, gone)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// kick moves up to n buried jobs of a tube to ready, or delayed ones when
// none is buried.
func (h *handler) kick(w http.ResponseWriter, r *http.Request) {
	name, ok := h.formTube(w, r)
	if !ok {
		return
	}
	s := strings.TrimSpace(r.PostForm.Get("n"))
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		h.badRequest(w, r, fmt.Sprintf("%q is not a number of jobs to kick: give a whole number from 1.", s))
		return
	}
	st, ok := h.tubeStats(w, r, name)
	if !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "kick",
		Question: fmt.Sprintf("Kick up to %d jobs of tube %q to ready? Buried jobs go first, oldest first; only when none is buried, delayed jobs, due soonest first.", n, name),
		Details:  []field{{"Tube", name}, {"Buried", itoa(st.Buried)}, {"Delayed", itoa(st.Delayed)}},
		Fields:   []field{{"tube", name}, {"n", itoa(n)}},
		Button:   "Kick",
		Back:     h.tubeURL(name),
	}, fmt.Sprintf("There is no tube %q.", name), func(ctx context.Context) (string, error) {
		k, err := h.q.Kick(ctx, name, n)
		return h.tubeURL(name, "done", "kick", "n", itoa(k)), err
	})
}

// kickJob moves one buried or delayed job to ready.
func (h *handler) kickJob(w http.ResponseWriter, r *http.Request) {
	st, ok := h.jobStats(w, r)
	if !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "kick-job",
		Question: fmt.Sprintf("Kick job %d, %s in tube %q, to ready?", st.ID, st.State, st.Tube),
		Details:  jobDetails(st),
		Fields:   []field{{"id", st.ID.String()}},
		Button:   "Kick job",
		Back:     h.jobURL(st.ID),
	}, fmt.Sprintf("Job %d is gone, or it is neither buried nor delayed, so it cannot be kicked.", st.ID),
		func(ctx context.Context) (string, error) {
			return h.jobURL(st.ID, "done", "kick-job"), h.q.KickJob(ctx, st.ID)
		})
}

// parsePause reads a pause length: a Go duration such as "90s" or
// "1h30m", or a whole number of seconds.
func parsePause(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(maxPause/time.Second) {
			return 0, fmt.Errorf("%d seconds is out of range", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 || d > maxPause {
		return 0, fmt.Errorf("%s is out of range", d)
	}
	return d, nil
}

// maxPause is the longest pause the form takes.
const maxPause = 365 * 24 * time.Hour

// pause pauses a tube for a while.
func (h *handler) pause(w http.ResponseWriter, r *http.Request) {
	name, ok := h.formTube(w, r)
	if !ok {
		return
	}
	s := r.PostForm.Get("duration")
	d, err := parsePause(s)
	if err != nil {
		h.badRequest(w, r, fmt.Sprintf("%q is not a pause length (%v): give a duration such as 90s, 5m or 1h30m, or a number of seconds, from 1s to a year.", s, err))
		return
	}
	if _, ok := h.tubeStats(w, r, name); !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "pause",
		Question: fmt.Sprintf("Pause tube %q for %s? No client reserves its jobs until the pause ends or the tube is resumed.", name, d),
		Details:  []field{{"Tube", name}, {"Pause", d.String()}},
		Fields:   []field{{"tube", name}, {"duration", d.String()}},
		Button:   "Pause",
		Back:     h.tubeURL(name),
	}, "", func(ctx context.Context) (string, error) {
		return h.tubeURL(name, "done", "pause"), h.q.PauseTube(ctx, name, d)
	})
}

// resume ends a tube's pause.
func (h *handler) resume(w http.ResponseWriter, r *http.Request) {
	name, ok := h.formTube(w, r)
	if !ok {
		return
	}
	st, ok := h.tubeStats(w, r, name)
	if !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "resume",
		Question: fmt.Sprintf("Resume tube %q now? Clients reserve its ready jobs at once.", name),
		Details:  []field{{"Tube", name}, {"Pause left", fmtDuration(st.PauseLeft)}},
		Fields:   []field{{"tube", name}},
		Button:   "Resume",
		Back:     h.tubeURL(name),
	}, "", func(ctx context.Context) (string, error) {
		return h.tubeURL(name, "done", "resume"), h.q.PauseTube(ctx, name, 0)
	})
}

// deleteJob deletes a job that is ready, delayed or buried.
func (h *handler) deleteJob(w http.ResponseWriter, r *http.Request) {
	st, ok := h.jobStats(w, r)
	if !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "delete-job",
		Question: fmt.Sprintf("Delete job %d, %s in tube %q? This cannot be undone.", st.ID, st.State, st.Tube),
		Details:  jobDetails(st),
		Fields:   []field{{"id", st.ID.String()}},
		Button:   "Delete job",
		Back:     h.jobURL(st.ID),
	}, fmt.Sprintf("There is no job %d: it was deleted already.", st.ID),
		func(ctx context.Context) (string, error) {
			return h.tubeURL(st.Tube, "done", "delete-job"), h.q.Delete(ctx, st.ID)
		})
}

// deleteTube deletes a tube and all its jobs.
func (h *handler) deleteTube(w http.ResponseWriter, r *http.Request) {
	name, ok := h.formTube(w, r)
	if !ok {
		return
	}
	st, ok := h.tubeStats(w, r, name)
	if !ok {
		return
	}
	h.act(w, r, confirmData{
		Action:   "delete-tube",
		Question: fmt.Sprintf("Delete tube %q and every job in it, reserved ones included? This cannot be undone.", name),
		Details: []field{{"Tube", name}, {"Ready", itoa(st.Ready)}, {"Reserved", itoa(st.Reserved)},
			{"Delayed", itoa(st.Delayed)}, {"Buried", itoa(st.Buried)}},
		Fields: []field{{"tube", name}},
		Button: "Delete tube",
		Back:   h.tubeURL(name),
	}, fmt.Sprintf("There is no tube %q: it was deleted already.", name),
		func(ctx context.Context) (string, error) {
			n, err := h.q.DeleteTube(ctx, name)
			return h.prefix + "?" + query("done", "delete-tube", "n", itoa(n)), err
		})
}

func jobDetails(st *beanspike.JobStats) []field {
	return []field{
		{"Job", st.ID.String()}, {"Tube", st.Tube}, {"State", st.State.String()},
		{"Priority", strconv.FormatUint(uint64(st.Priority), 10)}, {"Age", fmtDuration(st.Age)},
		{"Size", itoa(st.Size) + " bytes"},
	}
}
