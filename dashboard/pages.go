package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/beanspike/beanspike"
)

// statsWorkers is how many StatsTube calls the overview makes at once.
const statsWorkers = 8

// tubeRow is one tube of the overview, and of its JSON.
type tubeRow struct {
	Name      string        `json:"name"`
	Ready     int           `json:"ready"`
	Urgent    int           `json:"urgent"`
	Reserved  int           `json:"reserved"`
	Delayed   int           `json:"delayed"`
	Buried    int           `json:"buried"`
	Waiting   int           `json:"waiting"`
	Paused    bool          `json:"paused"`
	PauseLeft time.Duration `json:"-"`
	// PauseLeftSeconds is PauseLeft for the JSON.
	PauseLeftSeconds float64 `json:"pauseLeftSeconds"`
	TotalJobs        uint64  `json:"totalJobs"`
	// PutRate is in jobs per second; nil until two refreshes have been
	// seen.
	PutRate *float64 `json:"putRate"`
}

func newRow(st *beanspike.TubeStats, rate *float64) tubeRow {
	return tubeRow{
		Name: st.Name, Ready: st.Ready, Urgent: st.Urgent, Reserved: st.Reserved,
		Delayed: st.Delayed, Buried: st.Buried, Waiting: st.Waiting,
		Paused: st.PauseLeft > 0, PauseLeft: st.PauseLeft, PauseLeftSeconds: st.PauseLeft.Seconds(),
		TotalJobs: st.TotalJobs, PutRate: rate,
	}
}

// overviewData is the overview page, and the JSON the script polls.
type overviewData struct {
	Tubes []tubeRow `json:"tubes"`
	// Hidden counts the tubes past MaxTubes, which are not listed.
	Hidden int `json:"hidden"`
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// loadTubes gets the stats of the store's first MaxTubes tubes, a few
// calls at a time, and their rates. A tube deleted meanwhile is left out.
func (h *handler) loadTubes(ctx context.Context) (overviewData, error) {
	names, err := h.q.Tubes(ctx)
	if err != nil {
		return overviewData{}, err
	}
	var d overviewData
	if len(names) > MaxTubes {
		d.Hidden = len(names) - MaxTubes
		names = names[:MaxTubes]
	}
	stats := make([]*beanspike.TubeStats, len(names))
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(statsWorkers, len(names)) {
		wg.Go(func() {
			for i := range next {
				stats[i], errs[i] = h.q.StatsTube(ctx, names[i])
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	found := stats[:0]
	for i, err := range errs {
		switch {
		case err == nil:
			found = append(found, stats[i])
		case !errors.Is(err, beanspike.ErrNotFound):
			return overviewData{}, err
		}
	}
	rates := h.rates.observe(h.now(), found, d.Hidden == 0)
	d.Tubes = make([]tubeRow, len(found))
	for i, st := range found {
		d.Tubes[i] = newRow(st, rates[i])
	}
	return d, nil
}

// overview lists the tubes with their counts and rates.
func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	d, err := h.loadTubes(ctx)
	if err != nil {
		h.failErr(w, r, err, "The store has no such tubes.")
		return
	}
	h.render(w, r, http.StatusOK, "overview", "Tubes", d)
}

// tubesJSON is the overview as JSON, for the script that refreshes it.
func (h *handler) tubesJSON(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	d, err := h.loadTubes(ctx)
	if err != nil {
		h.failErr(w, r, err, "The store has no such tubes.")
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// jobView is a job as a page shows it.
type jobView struct {
	Job   *beanspike.Job
	Stats *beanspike.JobStats
	Body  bodyView
}

// Kickable tells whether the job can be kicked: it is buried or delayed.
func (v *jobView) Kickable() bool {
	return v.Stats.State == beanspike.Buried || v.Stats.State == beanspike.Delayed
}

// peekView is the next job of a tube in one state, if any.
type peekView struct {
	State string
	Job   *jobView
}

type tubeData struct {
	Row   tubeRow
	Stats *beanspike.TubeStats
	Peeks []peekView
}

// tube shows one tube's stats and its next ready, delayed and buried jobs.
func (h *handler) tube(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if err := beanspike.ValidateTube(name); err != nil {
		h.badRequest(w, r, err.Error())
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	st, err := h.q.StatsTube(ctx, name)
	if err != nil {
		h.failErr(w, r, err, fmt.Sprintf("There is no tube %q: it was never used, or it was deleted.", name))
		return
	}
	rate := h.rates.observe(h.now(), []*beanspike.TubeStats{st}, false)[0]
	d := tubeData{Row: newRow(st, rate), Stats: st}
	peeks := []struct {
		state string
		peek  func(context.Context, string) (*beanspike.Job, error)
	}{
		{"ready", h.q.PeekReady},
		{"delayed", h.q.PeekDelayed},
		{"buried", h.q.PeekBuried},
	}
	for _, p := range peeks {
		v := peekView{State: p.state}
		j, err := p.peek(ctx, name)
		if err == nil {
			v.Job, err = h.jobView(ctx, j)
		}
		if err != nil && !errors.Is(err, beanspike.ErrNotFound) {
			h.failErr(w, r, err, "")
			return
		}
		d.Peeks = append(d.Peeks, v)
	}
	h.render(w, r, http.StatusOK, "tube", "Tube "+name, d)
}

// jobView adds a peeked job's stats.
func (h *handler) jobView(ctx context.Context, j *beanspike.Job) (*jobView, error) {
	st, err := h.q.StatsJob(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	return &jobView{Job: j, Stats: st, Body: viewBody(j.Body, h.bodyLimit)}, nil
}

// job shows one job's stats and body.
func (h *handler) job(w http.ResponseWriter, r *http.Request) {
	id, ok := h.jobID(w, r, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	j, err := h.q.Peek(ctx, id)
	var v *jobView
	if err == nil {
		v, err = h.jobView(ctx, j)
	}
	if err != nil {
		h.failErr(w, r, err, fmt.Sprintf("There is no job %d: it was never put, or it was deleted.", id))
		return
	}
	h.render(w, r, http.StatusOK, "job", "Job "+id.String(), v)
}

// jobID parses a job ID, or answers 400.
func (h *handler) jobID(w http.ResponseWriter, r *http.Request, s string) (beanspike.ID, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		h.badRequest(w, r, fmt.Sprintf("%q is not a job ID: IDs are whole numbers from 1.", s))
		return 0, false
	}
	return beanspike.ID(n), true
}

// tubeURL and jobURL are the addresses of a tube's and a job's page,
// with extra query parameters in pairs.
func (h *handler) tubeURL(name string, kv ...string) string {
	return h.prefix + "tube?" + query(append([]string{"name", name}, kv...)...)
}

func (h *handler) jobURL(id beanspike.ID, kv ...string) string {
	return h.prefix + "job?" + query(append([]string{"id", id.String()}, kv...)...)
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
