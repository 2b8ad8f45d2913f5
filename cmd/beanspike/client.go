package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// errNothingReady is returned by reserve when its wait passes.
var errNothingReady = errors.New("no job ready in time")

// Flag values that check what they are given, so that a bad value is a
// usage error, reported by the flag package as
// `invalid value "x" for flag -name: why`.

// priorityValue is a job priority, 0 to 2^32-1.
type priorityValue uint32

func (p *priorityValue) String() string { return strconv.FormatUint(uint64(*p), 10) }
func (p *priorityValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("a priority is a whole number from 0 to %d", uint32(1<<32-1))
	}
	*p = priorityValue(n)
	return nil
}

func priorityFlag(fs *flag.FlagSet, name string, def uint32, usage string) *uint32 {
	v := priorityValue(def)
	fs.Var(&v, name, usage)
	return (*uint32)(&v)
}

// durationValue is a duration that is not negative, or, if positive is
// set, above zero.
type durationValue struct {
	d        time.Duration
	positive bool
}

func (v *durationValue) String() string { return v.d.String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errors.New("not a duration (e.g. 500ms, 30s, 1h)")
	case d < 0:
		return errors.New("a duration must not be negative")
	case d == 0 && v.positive:
		return errors.New("a duration must be above zero")
	}
	v.d = d
	return nil
}

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, positive bool, usage string) *time.Duration {
	v := &durationValue{d: def, positive: positive}
	fs.Var(v, name, usage)
	return &v.d
}

// tubeValue is a valid tube name.
type tubeValue string

// String quotes the name, as the flag package quotes the defaults of
// string flags.
func (t *tubeValue) String() string { return strconv.Quote(string(*t)) }
func (t *tubeValue) Set(s string) error {
	if err := checkTube(s); err != nil {
		return err
	}
	*t = tubeValue(s)
	return nil
}

func tubeFlag(fs *flag.FlagSet, usage string) *string {
	v := tubeValue(beanspike.DefaultTube)
	fs.Var(&v, "tube", usage)
	return (*string)(&v)
}

// tubeList is a repeatable -tube flag that also takes comma-separated
// lists of valid tube names.
type tubeList []string

func (t *tubeList) String() string { return strings.Join(*t, ",") }
func (t *tubeList) Set(s string) error {
	names := strings.Split(s, ",")
	for _, n := range names {
		if err := checkTube(n); err != nil {
			return err
		}
	}
	*t = append(*t, names...)
	return nil
}

// orDefault returns t, or the default tube if t is empty.
func (t tubeList) orDefault() []string {
	if len(t) == 0 {
		return []string{beanspike.DefaultTube}
	}
	return t
}

// checkTube returns an error, with exit status 2, that says what is
// wrong with a tube name, or nil if it is valid.
func checkTube(name string) error {
	err := beanspike.ValidateTube(name)
	if err == nil {
		return nil
	}
	const rule = "tube names take ASCII letters, digits and - + / ; . $ _ ( )"
	var msg string
	switch {
	case name == "":
		msg = "the tube name is empty"
	case len(name) > beanspike.MaxTubeNameLen:
		msg = fmt.Sprintf("the tube name is %d bytes, longer than %d", len(name), beanspike.MaxTubeNameLen)
	case name[0] == '-':
		msg = fmt.Sprintf("tube name %q starts with a hyphen", name)
	default:
		msg = message(err)
		for i := 0; i < len(name); {
			r, size := utf8.DecodeRuneInString(name[i:])
			if size == 1 && beanspike.TubeNameByte(name[i]) {
				i++
				continue
			}
			what := fmt.Sprintf("%q (U+%04X)", r, r)
			if r == utf8.RuneError && size == 1 {
				what = fmt.Sprintf(`the byte '\x%02x', not UTF-8,`, name[i])
			}
			msg = fmt.Sprintf("tube name %q has %s at byte %d: %s", name, what, i, rule)
			break
		}
	}
	return failf(exitUsage, err, "%s", msg)
}

// clientFlags are the flags every client command has.
type clientFlags struct {
	addr        *string
	token       *string
	timeout     *time.Duration
	timeoutName string // the name of the timeout flag
	tls         clientTLSFlags
}

func (a *app) clientFlags(fs *flag.FlagSet) clientFlags {
	return a.clientFlagsNamed(fs, "timeout")
}

// clientFlagsNamed is clientFlags with the call timeout flag named
// timeoutName.
func (a *app) clientFlagsNamed(fs *flag.FlagSet, timeoutName string) clientFlags {
	def := a.getenv(EnvAddr)
	if def == "" {
		def = DefaultAddr
	}
	return clientFlags{
		addr:        fs.String("addr", def, "server `address` (default from $"+EnvAddr+")"),
		timeout:     durationFlag(fs, timeoutName, 10*time.Second, true, "the longest `duration` of connecting and of each call to the server"),
		timeoutName: timeoutName,
		tls:         a.clientTLSFlags(fs),
		token:       fs.String("token", a.getenv(EnvToken), "the server's `token` (default from $"+EnvToken+")"),
	}
}

// session is a client of a server: one run of a client command.
type session struct {
	q       *remote.Queue
	addr    string
	timeout time.Duration
	flag    string // the name of the timeout flag
}

func (s *session) Close() error { return s.q.Close() }

// call returns ctx bounded by the call timeout.
func (s *session) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// connect opens a session with the server at cf.addr.
func (a *app) connect(ctx context.Context, cf clientFlags) (*session, error) {
	tlsCfg, err := cf.tls.config()
	if err != nil {
		return nil, failf(exitUsage, err, "%v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, *cf.timeout)
	defer cancel()
	var nodeOpts []vnet.Option
	if tlsCfg != nil {
		nodeOpts = append(nodeOpts, vnet.WithDialTLS(tlsCfg))
	}
	// DialTCP reconnects by itself when the server restarts, which a
	// long work command needs.
	q, err := remote.DialTCP(cctx, *cf.addr, remote.WithCallTimeout(*cf.timeout), remote.WithNodeOptions(nodeOpts...),
		remote.WithLogger(slog.New(slog.DiscardHandler)), remote.WithToken(*cf.token))
	if err != nil {
		if ctx.Err() != nil {
			return nil, failf(exitError, ctx.Err(), "interrupted")
		}
		return nil, failf(exitError, err, "cannot reach a server at %s: %s", *cf.addr, message(err))
	}
	return &session{q: q, addr: *cf.addr, timeout: *cf.timeout, flag: cf.timeoutName}, nil
}

// withSession runs f with a session; f bounds its calls itself (see
// session.call). Errors f leaves as they are get the server's address
// or the timeout in their message.
func (a *app) withSession(ctx context.Context, cf clientFlags, f func(ctx context.Context, s *session) error) error {
	s, err := a.connect(ctx, cf)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.explain(ctx, f(ctx, s))
}

// withConn runs f with a session and a context bounded by the call
// timeout.
func (a *app) withConn(ctx context.Context, cf clientFlags, f func(ctx context.Context, q beanspike.Queue) error) error {
	return a.withSession(ctx, cf, func(ctx context.Context, s *session) error {
		cctx, cancel := s.call(ctx)
		defer cancel()
		return f(cctx, s.q)
	})
}

// explain gives the errors of the transport a message that says what
// happened, each error of a join its own; ctx is the command's.
func (s *session) explain(ctx context.Context, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = s.explain(ctx, e)
		}
		return errors.Join(out...)
	}
	var ce *cliError
	switch {
	case err == nil || errors.As(err, &ce):
		return err
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return failf(exitError, err, "interrupted")
	case errors.Is(err, context.DeadlineExceeded):
		return failf(exitError, err, "no reply from the server at %s within %s (-%s)", s.addr, s.timeout, s.flag)
	case errors.Is(err, beanspike.ErrUnavailable):
		return failf(exitError, err, "the server at %s is unavailable: %s", s.addr, strings.TrimPrefix(message(err), "store unavailable: "))
	}
	return err
}

// jobErr explains an error of a call on job id.
func jobErr(id beanspike.ID, err error) error {
	switch {
	case errors.Is(err, beanspike.ErrNotFound):
		return failf(exitNotFound, err, "job %d not found", id)
	case errors.Is(err, beanspike.ErrNotReserved):
		return failf(exitNotFound, err, "job %d is reserved by another client", id)
	}
	return err
}

// tubeErr explains an error of a call on tube.
func tubeErr(tube string, err error) error {
	if errors.Is(err, beanspike.ErrNotFound) {
		return failf(exitNotFound, err, "no tube %q", tube)
	}
	return err
}

// outputErr explains a failure to write a command's output.
func outputErr(err error, format string, args ...any) error {
	return failf(exitError, err, "cannot write to standard output: %v%s", err, fmt.Sprintf(format, args...))
}

func parseID(fs *flag.FlagSet, s string) (beanspike.ID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usageErr(fs, "%q is not a job ID", s)
	}
	return beanspike.ID(n), nil
}

// outputFlags are the -json and -body flags of the commands that print
// jobs.
type outputFlags struct {
	json, body *bool
}

func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON instead of text")
}

func jobOutputFlags(fs *flag.FlagSet) outputFlags {
	return outputFlags{
		json: jsonFlag(fs),
		body: fs.Bool("body", false, "print only the body"),
	}
}

func (o outputFlags) check(fs *flag.FlagSet) error {
	if *o.json && *o.body {
		return usageErr(fs, "give -json or -body, not both")
	}
	return nil
}

// appendJSON appends v as one line of JSON.
func appendJSON(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the values encoded here always encode
	}
	return append(b, buf.Bytes()...)
}

// seconds is a duration written in JSON as a number of seconds.
type seconds time.Duration

func (s seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', -1, 64), nil
}

// jobJSON is a job in -json output. The body is text when it is valid
// UTF-8, else base64.
type jobJSON struct {
	ID         beanspike.ID `json:"id"`
	Tube       string       `json:"tube"`
	Priority   uint32       `json:"priority"`
	TTR        seconds      `json:"ttr"`
	Reserves   uint32       `json:"reserves"`
	Bytes      int          `json:"bytes"`
	Body       *string      `json:"body,omitempty"`
	BodyBase64 []byte       `json:"body_base64,omitempty"`
}

// formatJob appends a job: its description and body, only its body, or
// JSON.
func formatJob(b []byte, j *beanspike.Job, o outputFlags) []byte {
	switch {
	case *o.body:
		return append(b, j.Body...)
	case *o.json:
		v := jobJSON{ID: j.ID, Tube: j.Tube, Priority: j.Priority, TTR: seconds(j.TTR), Reserves: j.Reserves, Bytes: len(j.Body)}
		if utf8.Valid(j.Body) {
			s := string(j.Body)
			v.Body = &s
		} else {
			v.BodyBase64 = j.Body
		}
		return appendJSON(b, v)
	}
	b = fmt.Appendf(b, "id %d\ntube %s\npriority %d\nttr %s\nreserves %d\nbytes %d\n\n", j.ID, j.Tube, j.Priority, j.TTR, j.Reserves, len(j.Body))
	b = append(b, j.Body...)
	if len(j.Body) > 0 && j.Body[len(j.Body)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// size formats n bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func (a *app) put(ctx context.Context, args []string) error {
	fs := a.flagsAbout("put", "[BODY]", "Put a job into a tube and print its ID. The body is BODY, or standard\n"+
		"input when BODY is absent or \"-\" (at a terminal, end it with Ctrl-D).")
	cf := a.clientFlags(fs)
	tube := tubeFlag(fs, "`tube` to put into")
	pri := priorityFlag(fs, "pri", beanspike.DefaultPriority, "`priority`, 0 to 4294967295 (lower is more urgent)")
	delay := durationFlag(fs, "delay", 0, false, "keep the job delayed for this `duration`")
	ttr := durationFlag(fs, "ttr", beanspike.DefaultTTR, false, "time-to-run: the `duration` a reservation of the job lasts")
	compress := fs.Bool("compress", false, "store the body LZ4-compressed when that makes it smaller")
	asJSON := jsonFlag(fs)
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	var body []byte
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		body = []byte(fs.Arg(0))
	} else {
		if a.terminal(a.stdin) {
			fmt.Fprintln(a.stderr, "beanspike put: reading the body from standard input; end it with Ctrl-D (or give BODY as an argument)")
		}
		in := &countingReader{r: a.stdin}
		stop := a.progress(func(time.Duration) string { return "reading the body: " + size(in.n.Load()) })
		var err error
		body, err = io.ReadAll(in)
		stop()
		if err != nil {
			return failf(exitError, err, "cannot read the body from standard input: %v", err)
		}
	}
	opts := []beanspike.PutOption{beanspike.WithPriority(*pri), beanspike.WithDelay(*delay), beanspike.WithTTR(*ttr)}
	if *compress {
		opts = append(opts, beanspike.WithCompression())
	}
	return a.withSession(ctx, cf, func(ctx context.Context, s *session) error {
		tooBig := func(err error) error {
			return failf(exitUsage, err, "the body is %d bytes, over the server's limit of %d (serve -max-body sets it)", len(body), s.q.MaxBodySize())
		}
		if len(body) > s.q.MaxBodySize() {
			return tooBig(beanspike.ErrJobTooBig)
		}
		cctx, cancel := s.call(ctx)
		defer cancel()
		stop := a.progress(func(el time.Duration) string {
			return fmt.Sprintf("putting %s into %q: %s", size(int64(len(body))), *tube, el.Truncate(time.Second))
		})
		id, err := s.q.Put(cctx, *tube, body, opts...)
		stop()
		if errors.Is(err, beanspike.ErrJobTooBig) {
			return tooBig(err)
		}
		if err != nil {
			return err
		}
		var out []byte
		if *asJSON {
			out = appendJSON(out, struct {
				ID   beanspike.ID `json:"id"`
				Tube string       `json:"tube"`
			}{id, *tube})
		} else {
			out = fmt.Appendf(out, "%d\n", id)
		}
		if err := a.emit(out); err != nil {
			return outputErr(err, " (job %d was put)", id)
		}
		return nil
	})
}

func (a *app) reserve(ctx context.Context, args []string) error {
	fs := a.flagsAbout("reserve", "", "Reserve the most urgent ready job of the tubes and print it. The job returns\n"+
		"to ready when the command exits, unless -delete deletes it once it is printed.")
	cf := a.clientFlags(fs)
	var tubes tubeList
	fs.Var(&tubes, "tube", "`tube` to watch (repeatable, or comma-separated; default \"default\")")
	wait := durationFlag(fs, "wait", 0, false, "the longest `duration` to wait for a job (0: take a ready job or fail at once)")
	del := fs.Bool("delete", false, "delete the job once it is printed (else it returns to ready on exit)")
	out := jobOutputFlags(fs)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := out.check(fs); err != nil {
		return err
	}
	names := quoteTubes(tubes.orDefault())
	return a.withSession(ctx, cf, func(ctx context.Context, s *session) error {
		rctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		stop := a.progress(func(el time.Duration) string {
			return fmt.Sprintf("waiting for a job in %s: %s of %s", names, el.Truncate(time.Second), *wait)
		})
		j, err := s.q.Reserve(rctx, tubes...)
		stop()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				if *wait == 0 {
					return failf(exitNotFound, errNothingReady, "no job ready in %s", names)
				}
				return failf(exitNotFound, errNothingReady, "no job ready in %s within %s", names, *wait)
			}
			return err
		}
		if err := a.emit(formatJob(nil, j, out)); err != nil {
			if *del {
				return outputErr(err, "; job %d is not deleted and returns to ready", j.ID)
			}
			return outputErr(err, "; job %d returns to ready", j.ID)
		}
		if *del {
			cctx, cancel := s.call(ctx)
			defer cancel()
			if err := s.q.Delete(cctx, j.ID); err != nil {
				return jobErr(j.ID, err)
			}
		}
		return nil
	})
}

// quoteTubes lists tube names, quoted.
func quoteTubes(tubes []string) string {
	q := make([]string, len(tubes))
	for i, t := range tubes {
		q[i] = strconv.Quote(t)
	}
	return strings.Join(q, ", ")
}

func (a *app) delete(ctx context.Context, args []string) error {
	fs := a.flagsAbout("delete", "ID...", "Delete jobs that are ready, delayed or buried. In a command that work runs,\n"+
		"delete with no ID (or the job's ID) deletes the job work holds, when the command exits.")
	cf := a.clientFlags(fs)
	if err := parse(fs, args, 0, -1); err != nil {
		return err
	}
	ids := make([]beanspike.ID, fs.NArg())
	for i, s := range fs.Args() {
		id, err := parseID(fs, s)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	if len(ids) == 0 {
		if !a.inWork() {
			return usageErr(fs, "give the IDs of the jobs to delete")
		}
		return a.askWork(ctx, workRequest{Op: "delete"})
	}
	var remote []beanspike.ID
	var errs []error
	for _, id := range ids {
		if a.heldByWork(id) {
			if err := a.askWork(ctx, workRequest{Op: "delete", ID: id}); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		remote = append(remote, id)
	}
	if len(remote) == 0 {
		return errors.Join(errs...)
	}
	err := a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		var (
			out  []byte
			errs []error
		)
		for _, id := range remote {
			if err := q.Delete(ctx, id); err != nil {
				errs = append(errs, jobErr(id, err))
				continue
			}
			out = fmt.Appendf(out, "deleted %d\n", id)
		}
		if err := a.emit(out); err != nil {
			errs = append(errs, outputErr(err, ""))
		}
		return errors.Join(errs...)
	})
	return errors.Join(append(errs, err)...)
}

// notHeld is the error of release, bury and touch for a job the command
// does not hold.
func notHeld(op string, id beanspike.ID, err error, hintTake bool) error {
	if errors.Is(err, beanspike.ErrNotFound) {
		return jobErr(id, err)
	}
	hint := ""
	if hintTake {
		hint = "; -take reserves it first"
	}
	return failf(exitNotFound, err, "job %d is not reserved by this client: each beanspike command is a client of its own, "+
		"and %s acts on the job of the work command that runs it%s", id, op, hint)
}

// heldOp runs release or bury: on the job a work command holds when run
// by that work command (req gives the request, once the flags are
// parsed), else on the server, where the job must be held by this
// command, which it is only with -take.
func (a *app) heldOp(ctx context.Context, fs *flag.FlagSet, args []string, req func() workRequest,
	f func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error) error {
	cf := a.clientFlags(fs)
	pri := priorityFlag(fs, "pri", 0, "new `priority` (default: keep the job's)")
	take := fs.Bool("take", false, "reserve the job first (it must be ready, delayed or buried; this counts as a reservation of the job)")
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	priSet := false
	fs.Visit(func(f *flag.Flag) { priSet = priSet || f.Name == "pri" })
	var id beanspike.ID
	if fs.NArg() == 1 {
		var err error
		if id, err = parseID(fs, fs.Arg(0)); err != nil {
			return err
		}
	}
	if !*take && a.heldByWork(id) {
		if priSet {
			return usageErr(fs, "-pri is not available for the job of a work command: it keeps its priority")
		}
		r := req()
		r.ID = id
		return a.askWork(ctx, r)
	}
	if id == 0 {
		return usageErr(fs, "give the ID of the job")
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		var p uint32
		if *take {
			j, err := q.ReserveJob(ctx, id)
			if errors.Is(err, beanspike.ErrNotFound) {
				return failf(exitNotFound, err, "job %d not found, or reserved by another client (-take takes a ready, delayed or buried job)", id)
			}
			if err != nil {
				return err
			}
			p = j.Priority
		} else if !priSet {
			st, err := q.StatsJob(ctx, id)
			if err != nil {
				return jobErr(id, err)
			}
			p = st.Priority
		}
		if priSet {
			p = *pri
		}
		if err := f(ctx, q, id, p); err != nil {
			if errors.Is(err, beanspike.ErrNotReserved) {
				return notHeld(fs.Name(), id, err, !*take)
			}
			return jobErr(id, err)
		}
		return nil
	})
}

func (a *app) release(ctx context.Context, args []string) error {
	fs := a.flagsAbout("release", "[ID]", "Release a reserved job: back to ready, or delayed with -delay.\n\n"+
		"In a command that work runs, release with no ID (or the job's ID) releases the\n"+
		"job work holds, when the command exits. Elsewhere a job is reserved only by the\n"+
		"command that reserved it: -take reserves the job first (as beanstalkd's\n"+
		"reserve-job), to change the priority or delay of a ready, delayed or buried job.")
	delay := durationFlag(fs, "delay", 0, false, "delay the job for this `duration`")
	return a.heldOp(ctx, fs, args, func() workRequest { return workRequest{Op: "release", Delay: *delay} },
		func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error {
			if err := q.Release(ctx, id, pri, *delay); err != nil {
				return err
			}
			if err := a.emit(fmt.Appendf(nil, "released %d (priority %d, delay %s)\n", id, pri, *delay)); err != nil {
				return outputErr(err, " (job %d was released)", id)
			}
			return nil
		})
}

func (a *app) bury(ctx context.Context, args []string) error {
	fs := a.flagsAbout("bury", "[ID]", "Bury a reserved job: no reserve returns it until it is kicked.\n\n"+
		"In a command that work runs, bury with no ID (or the job's ID) buries the job\n"+
		"work holds, when the command exits. Elsewhere a job is reserved only by the\n"+
		"command that reserved it: -take reserves the job first (as beanstalkd's\n"+
		"reserve-job), to bury a ready or delayed job.")
	reason := fs.String("reason", "", "why the job is buried (stats -job shows it)")
	return a.heldOp(ctx, fs, args, func() workRequest { return workRequest{Op: "bury", Reason: *reason} },
		func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error {
			if err := q.Bury(ctx, id, pri, *reason); err != nil {
				return err
			}
			if err := a.emit(fmt.Appendf(nil, "buried %d\n", id)); err != nil {
				return outputErr(err, " (job %d was buried)", id)
			}
			return nil
		})
}

func (a *app) touch(ctx context.Context, args []string) error {
	fs := a.flagsAbout("touch", "[ID]", "Extend the reservation of a job: it lapses the job's time-to-run from now.\n\n"+
		"A job is reserved only by the command that reserved it: touch acts on the job\n"+
		"of the work command that runs it (with no ID, or the job's ID). A work command\n"+
		"also touches its job itself while its command runs.")
	cf := a.clientFlags(fs)
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	var id beanspike.ID
	if fs.NArg() == 1 {
		var err error
		if id, err = parseID(fs, fs.Arg(0)); err != nil {
			return err
		}
	}
	if a.heldByWork(id) {
		return a.askWork(ctx, workRequest{Op: "touch", ID: id})
	}
	if id == 0 {
		return usageErr(fs, "give the ID of the job")
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		if err := q.Touch(ctx, id); err != nil {
			if errors.Is(err, beanspike.ErrNotReserved) {
				return notHeld("touch", id, err, false)
			}
			return jobErr(id, err)
		}
		// Only a server whose sessions share reservations gets here.
		if err := a.emit(fmt.Appendf(nil, "touched %d\n", id)); err != nil {
			return outputErr(err, "")
		}
		return nil
	})
}

// jobs returns "1 job" or "n jobs".
func jobs(n int) string {
	if n == 1 {
		return "1 job"
	}
	return fmt.Sprintf("%d jobs", n)
}

func (a *app) kick(ctx context.Context, args []string) error {
	fs := a.flagsAbout("kick", "N | -job ID", "Move up to N jobs of a tube to ready: its buried jobs, oldest buried first,\n"+
		"or, if it has none, its delayed jobs, due soonest first. -job kicks one buried\n"+
		"or delayed job instead.")
	cf := a.clientFlags(fs)
	tube := tubeFlag(fs, "`tube` to kick")
	job := fs.Uint64("job", 0, "kick this one job `ID` instead")
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	if *job != 0 {
		if fs.NArg() != 0 {
			return usageErr(fs, "give either -job or N")
		}
		return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
			if err := q.KickJob(ctx, beanspike.ID(*job)); err != nil {
				if errors.Is(err, beanspike.ErrNotFound) {
					return failf(exitNotFound, err, "job %d not found, or neither buried nor delayed", *job)
				}
				return err
			}
			if err := a.emit(fmt.Appendf(nil, "kicked job %d\n", *job)); err != nil {
				return outputErr(err, "")
			}
			return nil
		})
	}
	if fs.NArg() != 1 {
		return usageErr(fs, "give N, the most jobs to kick, or -job ID")
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n < 1 {
		return usageErr(fs, "%q is not a count of jobs (1 or more)", fs.Arg(0))
	}
	return a.withSession(ctx, cf, func(ctx context.Context, s *session) error {
		stats := func() (*beanspike.TubeStats, error) {
			cctx, cancel := s.call(ctx)
			defer cancel()
			return s.q.StatsTube(cctx, *tube)
		}
		st, err := stats()
		if errors.Is(err, beanspike.ErrNotFound) && *tube == beanspike.DefaultTube {
			st, err = &beanspike.TubeStats{Name: *tube}, nil
		}
		if err != nil {
			return tubeErr(*tube, err)
		}
		buried := st.Buried > 0
		kind := "delayed"
		if buried {
			kind = "buried"
		}
		// A large kick goes in batches, each checked to move jobs of the
		// same kind as the first, so that it moves what one Kick would.
		var kicked atomic.Int64
		stop := a.progress(func(time.Duration) string {
			return fmt.Sprintf("kicked %d of up to %d %s jobs of %q", kicked.Load(), n, kind, *tube)
		})
		defer stop()
		for int(kicked.Load()) < n {
			batch := min(n-int(kicked.Load()), a.kickBatch)
			cctx, cancel := s.call(ctx)
			k, err := s.q.Kick(cctx, *tube, batch)
			cancel()
			if err != nil {
				stop()
				if kicked.Load() > 0 {
					return fmt.Errorf("kicked %s, then: %w", jobs(int(kicked.Load())), s.explain(ctx, err))
				}
				return err
			}
			kicked.Add(int64(k))
			if k < batch || int(kicked.Load()) >= n {
				break
			}
			if st, err = stats(); err != nil {
				break
			}
			if buried && st.Buried == 0 || !buried && (st.Buried > 0 || st.Delayed == 0) {
				break
			}
		}
		stop()
		if err := a.emit(fmt.Appendf(nil, "kicked %s\n", jobs(int(kicked.Load())))); err != nil {
			return outputErr(err, "")
		}
		return nil
	})
}

func (a *app) peek(ctx context.Context, args []string) error {
	fs := a.flagsAbout("peek", "[ID]", "Show a job without reserving it: the job ID, or the next job of a tube in a state.")
	cf := a.clientFlags(fs)
	tube := tubeFlag(fs, "`tube` for -ready, -delayed and -buried")
	ready := fs.Bool("ready", false, "peek the next ready job of the tube")
	delayed := fs.Bool("delayed", false, "peek the delayed job of the tube due soonest")
	buried := fs.Bool("buried", false, "peek the job of the tube buried longest ago")
	out := jobOutputFlags(fs)
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	if err := out.check(fs); err != nil {
		return err
	}
	modes := 0
	for _, b := range []bool{*ready, *delayed, *buried, fs.NArg() == 1} {
		if b {
			modes++
		}
	}
	if modes != 1 {
		return usageErr(fs, "give a job ID or one of -ready, -delayed, -buried")
	}
	var id beanspike.ID
	if fs.NArg() == 1 {
		var err error
		if id, err = parseID(fs, fs.Arg(0)); err != nil {
			return err
		}
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		var (
			j     *beanspike.Job
			err   error
			state string
		)
		switch {
		case *ready:
			state = "ready"
			j, err = q.PeekReady(ctx, *tube)
		case *delayed:
			state = "delayed"
			j, err = q.PeekDelayed(ctx, *tube)
		case *buried:
			state = "buried"
			j, err = q.PeekBuried(ctx, *tube)
		default:
			j, err = q.Peek(ctx, id)
		}
		if errors.Is(err, beanspike.ErrNotFound) {
			if state == "" {
				return jobErr(id, err)
			}
			if _, serr := q.StatsTube(ctx, *tube); errors.Is(serr, beanspike.ErrNotFound) && *tube != beanspike.DefaultTube {
				return tubeErr(*tube, serr)
			}
			return failf(exitNotFound, err, "tube %q has no %s job", *tube, state)
		}
		if err != nil {
			return err
		}
		if err := a.emit(formatJob(nil, j, out)); err != nil {
			return outputErr(err, "")
		}
		return nil
	})
}

// tubeStatsJSON is a tube's statistics in -json output; durations are
// in seconds.
type tubeStatsJSON struct {
	Name               string  `json:"name"`
	Ready              int     `json:"ready"`
	Urgent             int     `json:"urgent"`
	Reserved           int     `json:"reserved"`
	Delayed            int     `json:"delayed"`
	Buried             int     `json:"buried"`
	Waiting            int     `json:"waiting"`
	TotalJobs          uint64  `json:"total_jobs"`
	Deletes            uint64  `json:"deletes"`
	Pauses             uint64  `json:"pauses"`
	Pause              seconds `json:"pause"`
	PauseLeft          seconds `json:"pause_left"`
	Compressed         uint64  `json:"compressed"`
	CompressionSkipped uint64  `json:"compression_skipped"`
}

// jobStatsJSON is a job's statistics in -json output; durations are in
// seconds.
type jobStatsJSON struct {
	ID         beanspike.ID `json:"id"`
	Tube       string       `json:"tube"`
	State      string       `json:"state"`
	Priority   uint32       `json:"priority"`
	Age        seconds      `json:"age"`
	Delay      seconds      `json:"delay"`
	TTR        seconds      `json:"ttr"`
	TimeLeft   seconds      `json:"time_left"`
	Reserves   uint32       `json:"reserves"`
	Timeouts   uint32       `json:"timeouts"`
	Releases   uint32       `json:"releases"`
	Buries     uint32       `json:"buries"`
	Kicks      uint32       `json:"kicks"`
	BuryReason string       `json:"bury_reason"`
	Size       int          `json:"size"`
	StoredSize int          `json:"stored_size"`
	Compressed bool         `json:"compressed"`
}

func (a *app) stats(ctx context.Context, args []string) error {
	fs := a.flagsAbout("stats", "[TUBE...]", "Show the statistics of the tubes (all of them by default) as a table, or a job's.\n"+
		"The tube \"default\" always shows, with zeros until a job is put into it.")
	cf := a.clientFlags(fs)
	job := fs.Uint64("job", 0, "describe this job `ID` instead of tubes")
	asJSON := jsonFlag(fs)
	if err := parse(fs, args, 0, -1); err != nil {
		return err
	}
	if *job != 0 && fs.NArg() > 0 {
		return usageErr(fs, "give either -job or tubes")
	}
	for _, t := range fs.Args() {
		if err := checkTube(t); err != nil {
			return err
		}
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		if *job != 0 {
			s, err := q.StatsJob(ctx, beanspike.ID(*job))
			if err != nil {
				return jobErr(beanspike.ID(*job), err)
			}
			if err := a.emit(formatJobStats(s, *asJSON)); err != nil {
				return outputErr(err, "")
			}
			return nil
		}
		tubes := fs.Args()
		if len(tubes) == 0 {
			var err error
			if tubes, err = q.Tubes(ctx); err != nil {
				return err
			}
		}
		var (
			errs []error
			all  []*beanspike.TubeStats
		)
		for _, t := range tubes {
			s, err := q.StatsTube(ctx, t)
			if errors.Is(err, beanspike.ErrNotFound) && t == beanspike.DefaultTube {
				s, err = &beanspike.TubeStats{Name: t}, nil
			}
			if err != nil {
				errs = append(errs, tubeErr(t, err))
				continue
			}
			all = append(all, s)
		}
		if err := a.emit(formatTubeStats(all, *asJSON)); err != nil {
			errs = append(errs, outputErr(err, ""))
		}
		return errors.Join(errs...)
	})
}

func formatTubeStats(all []*beanspike.TubeStats, asJSON bool) []byte {
	if asJSON {
		v := make([]tubeStatsJSON, len(all))
		for i, s := range all {
			v[i] = tubeStatsJSON{
				Name: s.Name, Ready: s.Ready, Urgent: s.Urgent, Reserved: s.Reserved, Delayed: s.Delayed,
				Buried: s.Buried, Waiting: s.Waiting, TotalJobs: s.TotalJobs, Deletes: s.Deletes,
				Pauses: s.Pauses, Pause: seconds(s.Pause), PauseLeft: seconds(s.PauseLeft),
				Compressed: s.Compressed, CompressionSkipped: s.CompressionSkipped,
			}
		}
		return appendJSON(nil, v)
	}
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TUBE\tREADY\tURGENT\tRESERVED\tDELAYED\tBURIED\tWAITING\tTOTAL\tDELETES\tPAUSED")
	for _, s := range all {
		paused := "-"
		if s.PauseLeft > 0 {
			paused = s.PauseLeft.Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Ready, s.Urgent, s.Reserved, s.Delayed, s.Buried, s.Waiting, s.TotalJobs, s.Deletes, paused)
	}
	w.Flush()
	return buf.Bytes()
}

func formatJobStats(s *beanspike.JobStats, asJSON bool) []byte {
	if asJSON {
		return appendJSON(nil, jobStatsJSON{
			ID: s.ID, Tube: s.Tube, State: s.State.String(), Priority: s.Priority,
			Age: seconds(s.Age), Delay: seconds(s.Delay), TTR: seconds(s.TTR), TimeLeft: seconds(s.TimeLeft),
			Reserves: s.Reserves, Timeouts: s.Timeouts, Releases: s.Releases, Buries: s.Buries, Kicks: s.Kicks,
			BuryReason: s.BuryReason, Size: s.Size, StoredSize: s.StoredSize, Compressed: s.Compressed,
		})
	}
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	rows := []struct {
		k string
		v any
	}{
		{"id", s.ID}, {"tube", s.Tube}, {"state", s.State}, {"priority", s.Priority},
		{"age", s.Age.Round(time.Millisecond)}, {"delay", s.Delay}, {"ttr", s.TTR},
		{"time-left", s.TimeLeft.Round(time.Millisecond)}, {"reserves", s.Reserves},
		{"timeouts", s.Timeouts}, {"releases", s.Releases}, {"buries", s.Buries},
		{"kicks", s.Kicks}, {"bury-reason", s.BuryReason}, {"size", s.Size},
		{"stored-size", s.StoredSize}, {"compressed", s.Compressed},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%v\n", r.k, r.v)
	}
	w.Flush()
	return buf.Bytes()
}

func (a *app) tubes(ctx context.Context, args []string) error {
	fs := a.flagsAbout("tubes", "", "List the tubes, one a line, in lexical order.")
	cf := a.clientFlags(fs)
	asJSON := jsonFlag(fs)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		tubes, err := q.Tubes(ctx)
		if err != nil {
			return err
		}
		var out []byte
		if *asJSON {
			if tubes == nil {
				tubes = []string{}
			}
			out = appendJSON(out, tubes)
		} else {
			for _, t := range tubes {
				out = append(append(out, t...), '\n')
			}
		}
		if err := a.emit(out); err != nil {
			return outputErr(err, "")
		}
		return nil
	})
}

func (a *app) pause(ctx context.Context, args []string) error {
	fs := a.flagsAbout("pause", "DURATION", "Pause a tube: reserve takes none of its jobs for DURATION. 0 ends a pause.")
	cf := a.clientFlags(fs)
	tube := tubeFlag(fs, "`tube` to pause")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	d, err := time.ParseDuration(fs.Arg(0))
	if err != nil || d < 0 {
		return usageErr(fs, "%q is not a duration (e.g. 30s, 0 to unpause)", fs.Arg(0))
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		if err := q.PauseTube(ctx, *tube, d); err != nil {
			return err
		}
		msg := fmt.Sprintf("tube %s paused for %s\n", *tube, d)
		if d == 0 {
			msg = fmt.Sprintf("tube %s unpaused\n", *tube)
		}
		if err := a.emit([]byte(msg)); err != nil {
			return outputErr(err, "")
		}
		return nil
	})
}

func (a *app) deleteTube(ctx context.Context, args []string) error {
	fs := a.flagsAbout("delete-tube", "TUBE...", "Delete tubes and every job in them, whatever its state. Reservations of their\n"+
		"jobs end: their holders find the jobs gone.")
	cf := a.clientFlags(fs)
	if err := parse(fs, args, 1, -1); err != nil {
		return err
	}
	for _, t := range fs.Args() {
		if err := checkTube(t); err != nil {
			return err
		}
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		var (
			errs []error
			out  []byte
		)
		for _, t := range fs.Args() {
			n, err := q.DeleteTube(ctx, t)
			if err != nil {
				errs = append(errs, tubeErr(t, err))
				continue
			}
			out = fmt.Appendf(out, "deleted tube %s and its %s\n", t, jobs(n))
		}
		if err := a.emit(out); err != nil {
			errs = append(errs, outputErr(err, ""))
		}
		return errors.Join(errs...)
	})
}

// The environment of a command that work runs, besides $BEANSPIKE_ADDR.
const (
	envJobID       = "BEANSPIKE_JOB_ID"
	envJobTube     = "BEANSPIKE_JOB_TUBE"
	envJobPriority = "BEANSPIKE_JOB_PRIORITY"
	envJobReserves = "BEANSPIKE_JOB_RESERVES"
	// envWorkSocket is the Unix socket on which the work command answers
	// the requests of the commands it runs.
	envWorkSocket = "BEANSPIKE_WORK_SOCKET"
)

// killGrace is how long a command that work stops has between SIGTERM
// and SIGKILL.
const killGrace = 5 * time.Second

// workRequest is what a command run by work asks of it for its job, as
// one line of JSON on the work socket.
type workRequest struct {
	Op     string        `json:"op"` // "touch", "release", "bury" or "delete"
	ID     beanspike.ID  `json:"id"`
	Delay  time.Duration `json:"delay,omitempty"`
	Reason string        `json:"reason,omitempty"`
}

// workReply is work's answer to a workRequest: an exit status and what
// to print.
type workReply struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// inWork tells whether this command was run by a work command.
func (a *app) inWork() bool { return a.getenv(envWorkSocket) != "" }

// heldByWork tells whether this command was run by a work command for
// job id, or, if id is 0, for any job.
func (a *app) heldByWork(id beanspike.ID) bool {
	return a.inWork() && (id == 0 || a.getenv(envJobID) == id.String())
}

// askWork sends req to the work command that runs this command, and
// prints its answer. A request for ID 0 is for the command's job.
func (a *app) askWork(ctx context.Context, req workRequest) error {
	if req.ID == 0 {
		n, err := strconv.ParseUint(a.getenv(envJobID), 10, 64)
		if err != nil || n == 0 {
			return failf(exitError, nil, "$%s is %q, not a job ID", envJobID, a.getenv(envJobID))
		}
		req.ID = beanspike.ID(n)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", a.getenv(envWorkSocket))
	if err != nil {
		return failf(exitError, err, "cannot reach the work command that runs this one: %v", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var rep workReply
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return failf(exitError, err, "cannot ask the work command that runs this one: %v", err)
	}
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return failf(exitError, err, "no answer from the work command that runs this one: %v", err)
	}
	if rep.Code != exitOK {
		return failf(rep.Code, nil, "%s", rep.Msg)
	}
	if err := a.emit([]byte(rep.Msg + "\n")); err != nil {
		return outputErr(err, "")
	}
	return nil
}

// workJobs are the jobs a work command holds, and what their commands
// asked for them.
type workJobs struct {
	s    *session
	mu   sync.Mutex
	held map[beanspike.ID]*workRequest // nil: nothing asked yet
}

func (w *workJobs) add(id beanspike.ID) {
	w.mu.Lock()
	w.held[id] = nil
	w.mu.Unlock()
}

// remove forgets job id and returns what its command asked for it, if
// anything.
func (w *workJobs) remove(id beanspike.ID) *workRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	req := w.held[id]
	delete(w.held, id)
	return req
}

// serve answers the requests that come to l until l is closed.
func (w *workJobs) serve(ctx context.Context, l net.Listener, wg *sync.WaitGroup) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			var req workRequest
			rep := workReply{Code: exitUsage, Msg: "malformed request"}
			if json.NewDecoder(c).Decode(&req) == nil {
				rep = w.answer(ctx, req)
			}
			json.NewEncoder(c).Encode(rep)
		})
	}
}

// answer carries out req: a touch at once; a delete, release or bury
// is recorded, to take effect when the job's command exits.
func (w *workJobs) answer(ctx context.Context, req workRequest) workReply {
	w.mu.Lock()
	_, ok := w.held[req.ID]
	if ok && req.Op != "touch" {
		w.held[req.ID] = &req
	}
	w.mu.Unlock()
	if !ok {
		return workReply{exitNotFound, fmt.Sprintf("job %d is not held by the work command that runs this one", req.ID)}
	}
	switch req.Op {
	case "touch":
		cctx, cancel := w.s.call(ctx)
		defer cancel()
		if err := w.s.q.Touch(cctx, req.ID); err != nil {
			err = w.s.explain(ctx, jobErr(req.ID, err))
			return workReply{exitCode(err), message(err)}
		}
		return workReply{exitOK, fmt.Sprintf("touched %d", req.ID)}
	case "delete":
		return workReply{exitOK, fmt.Sprintf("job %d will be deleted when this command exits", req.ID)}
	case "release":
		return workReply{exitOK, fmt.Sprintf("job %d will be released with a delay of %s when this command exits", req.ID, req.Delay)}
	case "bury":
		return workReply{exitOK, fmt.Sprintf("job %d will be buried when this command exits", req.ID)}
	}
	return workReply{exitUsage, fmt.Sprintf("unknown request %q", req.Op)}
}

// logf writes a line of the work command to stderr.
func (a *app) logf(format string, args ...any) {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	fmt.Fprintf(a.stderr, "beanspike work: "+format+"\n", args...)
}

// workConfig is a work command's settings.
type workConfig struct {
	argv        []string
	timeout     time.Duration
	maxAttempts int
	sock        string
	held        *workJobs
	s           *session
}

func (a *app) work(ctx context.Context, args []string) error {
	fs := a.flagsAbout("work", "COMMAND [ARG...]", `Reserve jobs one at a time and run COMMAND for each: with one argument, as
"sh -c COMMAND"; with more, as the program and its arguments. The job's body is
the command's standard input, and its environment has BEANSPIKE_JOB_ID,
BEANSPIKE_JOB_TUBE, BEANSPIKE_JOB_PRIORITY, BEANSPIKE_JOB_RESERVES (the attempt:
1 the first time) and BEANSPIKE_ADDR. Its output goes to work's.

When the command exits 0, the job is deleted. When it fails, the job is released,
to be retried after a delay that doubles with each attempt (-backoff), or buried
if it has been reserved -max-attempts times. When it runs past -timeout, it is
killed and its job buried. Instead, the command can settle its job itself with
"beanspike delete", "beanspike release [-delay D]" or "beanspike bury [-reason R]",
which take effect when it exits, and extend the reservation with "beanspike touch";
work also touches the job while the command runs.

SIGINT or SIGTERM stops work: a running command gets SIGTERM (and SIGKILL 5s
later), and its job goes back to ready at once for another worker.`)
	cf := a.clientFlagsNamed(fs, "call-timeout")
	var tubes tubeList
	fs.Var(&tubes, "tube", "`tube` to take jobs from (repeatable, or comma-separated; default \"default\")")
	timeout := durationFlag(fs, "timeout", 0, false, "kill a command that runs longer than this `duration` and bury its job (0: no limit)")
	backoff := durationFlag(fs, "backoff", beanspike.DefaultBackoffBase, true, "`delay` before a failed job's first retry; it doubles with each attempt")
	maxBackoff := durationFlag(fs, "max-backoff", beanspike.DefaultBackoffMax, true, "longest `delay` before a retry")
	maxAttempts := fs.Int("max-attempts", beanspike.DefaultMaxAttempts, "bury a failing job on its `N`th reservation (0: never)")
	if err := parse(fs, args, 1, -1); err != nil {
		return err
	}
	switch {
	case *maxAttempts < 0:
		return usageErr(fs, "-max-attempts %d is negative", *maxAttempts)
	case *maxBackoff < *backoff:
		return usageErr(fs, "-max-backoff %s is below -backoff %s", *maxBackoff, *backoff)
	}
	argv := fs.Args()
	if len(argv) == 1 {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return failf(exitUsage, err, "cannot run %s: %v", argv[0], err)
	}
	names := quoteTubes(tubes.orDefault())
	return a.withSession(ctx, cf, func(ctx context.Context, s *session) error {
		dir, err := os.MkdirTemp("", "beanspike-work-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sock := filepath.Join(dir, "sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			return err
		}
		held := &workJobs{s: s, held: make(map[beanspike.ID]*workRequest)}
		var wg sync.WaitGroup
		wg.Go(func() { held.serve(ctx, l, &wg) })
		defer wg.Wait()
		defer l.Close()

		cfg := workConfig{argv: argv, timeout: *timeout, maxAttempts: *maxAttempts, sock: sock, held: held, s: s}
		runCtx, fail := context.WithCancelCause(ctx)
		defer fail(nil)
		w, err := beanspike.NewWorker(s.q,
			beanspike.HandlerFunc(func(ctx context.Context, j *beanspike.Job) error { return a.runJob(ctx, j, cfg) }),
			beanspike.WithTubes(tubes.orDefault()...), beanspike.WithBackoff(*backoff, *maxBackoff),
			beanspike.WithMaxAttempts(*maxAttempts),
			beanspike.WithErrorHandler(func(err error) {
				var we *beanspike.WorkerError
				switch {
				case !errors.As(err, &we) || we.Op == "handle":
					// runJob said what happened.
				case we.Op == "reserve" && (errors.Is(err, beanspike.ErrUnavailable) || errors.Is(err, beanspike.ErrClosed)):
					fail(s.explain(ctx, we.Err))
				case we.Job != nil:
					a.logf("job %d: %s failed: %s", we.Job.ID, we.Op, message(s.explain(ctx, we.Err)))
				default:
					a.logf("%s failed: %s", we.Op, message(s.explain(ctx, we.Err)))
				}
			}))
		if err != nil {
			return err
		}
		a.logf("taking jobs from %s at %s", names, s.addr)
		err = w.Run(runCtx)
		switch {
		case ctx.Err() != nil:
			a.logf("stopped")
			return nil
		case context.Cause(runCtx) != nil:
			return context.Cause(runCtx)
		}
		return err
	})
}

// runJob runs the command for job j and tells the worker what to do with
// the job.
func (a *app) runJob(ctx context.Context, j *beanspike.Job, cfg workConfig) error {
	cfg.held.add(j.ID)
	asked := func() *workRequest { return cfg.held.remove(j.ID) }
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, cfg.timeout)
	}
	defer cancel()
	cmd := exec.CommandContext(cctx, cfg.argv[0], cfg.argv[1:]...)
	cmd.Stdin = bytes.NewReader(j.Body)
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	cmd.Env = append(a.environ(),
		envJobID+"="+j.ID.String(),
		envJobTube+"="+j.Tube,
		envJobPriority+"="+strconv.FormatUint(uint64(j.Priority), 10),
		envJobReserves+"="+strconv.FormatUint(uint64(j.Reserves), 10),
		EnvAddr+"="+cfg.s.addr,
		envWorkSocket+"="+cfg.sock,
	)
	ownGroup(cmd)
	cmd.WaitDelay = killGrace + time.Second
	a.logf("job %d: running, attempt %d", j.ID, j.Reserves)
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	req := asked()
	spent := cfg.maxAttempts > 0 && int64(j.Reserves) >= int64(cfg.maxAttempts)
	switch {
	case ctx.Err() != nil:
		var we *beanspike.WorkerError
		if errors.As(context.Cause(ctx), &we) {
			a.logf("job %d: lost its reservation (%s); its command was stopped", j.ID, message(we.Err))
		} else {
			a.logf("job %d: its command was stopped; the job goes back to ready", j.ID)
		}
		return ctx.Err()
	case cfg.timeout > 0 && errors.Is(cctx.Err(), context.DeadlineExceeded):
		a.logf("job %d: its command ran past -timeout %s and was killed; burying the job", j.ID, cfg.timeout)
		return beanspike.BuryJob(fmt.Errorf("the command ran past -timeout %s", cfg.timeout))
	case req != nil && req.Op == "delete":
		a.logf("job %d: deleting it, as its command asked, after %s", j.ID, took)
		return nil
	case req != nil && req.Op == "bury":
		a.logf("job %d: burying it, as its command asked, after %s", j.ID, took)
		reason := req.Reason
		if reason == "" {
			reason = "buried by its command"
		}
		return beanspike.BuryJob(errors.New(reason))
	case req != nil && req.Op == "release" && spent:
		a.logf("job %d: burying it on attempt %d of -max-attempts %d (its command asked for a release)", j.ID, j.Reserves, cfg.maxAttempts)
		return beanspike.RetryAfter(errors.New("released by its command"), req.Delay)
	case req != nil && req.Op == "release":
		a.logf("job %d: releasing it with a delay of %s, as its command asked, after %s", j.ID, req.Delay, took)
		return beanspike.RetryAfter(errors.New("released by its command"), req.Delay)
	case err == nil:
		a.logf("job %d: done in %s; deleting it", j.ID, took)
		return nil
	case spent:
		a.logf("job %d: its command failed (%v) after %s, on attempt %d of -max-attempts %d; burying the job", j.ID, err, took, j.Reserves, cfg.maxAttempts)
	default:
		a.logf("job %d: its command failed (%v) after %s; releasing the job to retry after a backoff", j.ID, err, took)
	}
	return fmt.Errorf("the command failed (%v) on attempt %d", err, j.Reserves)
}
