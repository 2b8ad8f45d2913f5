package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// isNotFound tells whether err means "no such job or tube", or "nothing
// ready in time": exit status 3.
func isNotFound(err error) bool {
	return errors.Is(err, beanspike.ErrNotFound) || errors.Is(err, errNothingReady)
}

// errNothingReady is returned by reserve when its timeout passes.
var errNothingReady = errors.New("no job ready in time")

// clientFlags are the flags every client command has.
type clientFlags struct {
	addr    *string
	timeout *time.Duration
}

func (a *app) clientFlags(fs *flag.FlagSet) clientFlags {
	def := a.getenv(EnvAddr)
	if def == "" {
		def = DefaultAddr
	}
	return clientFlags{
		addr:    fs.String("addr", def, "server `address` (default from $"+EnvAddr+")"),
		timeout: fs.Duration("timeout", 10*time.Second, "bound on connecting and on each call"),
	}
}

// conn is a session with a server.
type conn struct {
	q    *remote.Queue
	node *vnet.Node
}

func (c *conn) Close() error {
	err := c.q.Close()
	c.node.Close()
	return err
}

// connect opens a session with the server at cf.addr.
func (a *app) connect(ctx context.Context, cf clientFlags) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, *cf.timeout)
	defer cancel()
	node, err := vnet.New()
	if err != nil {
		return nil, err
	}
	if err := node.Connect(ctx, "tcp", *cf.addr); err != nil {
		node.Close()
		return nil, fmt.Errorf("cannot reach a server at %s: %w", *cf.addr, err)
	}
	q, err := remote.Dial(ctx, node, remote.DefaultService, remote.WithCallTimeout(*cf.timeout))
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("cannot open a session at %s: %w", *cf.addr, err)
	}
	return &conn{q: q, node: node}, nil
}

// withConn runs f with a session and a context bounded by -timeout.
func (a *app) withConn(ctx context.Context, cf clientFlags, f func(ctx context.Context, q beanspike.Queue) error) error {
	c, err := a.connect(ctx, cf)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *cf.timeout)
	defer cancel()
	return f(ctx, c.q)
}

func parseID(fs *flag.FlagSet, s string) (beanspike.ID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usageErr(fs, "%q is not a job ID", s)
	}
	return beanspike.ID(n), nil
}

// printJob prints a job's description and body, or only its body.
func (a *app) printJob(j *beanspike.Job, bodyOnly bool) {
	if bodyOnly {
		a.stdout.Write(j.Body)
		return
	}
	fmt.Fprintf(a.stdout, "id %d\ntube %s\npriority %d\nttr %s\nreserves %d\nbytes %d\n\n", j.ID, j.Tube, j.Priority, j.TTR, j.Reserves, len(j.Body))
	a.stdout.Write(j.Body)
	if len(j.Body) > 0 && j.Body[len(j.Body)-1] != '\n' {
		fmt.Fprintln(a.stdout)
	}
}

func (a *app) put(ctx context.Context, args []string) error {
	fs := a.flags("put", "[BODY]")
	cf := a.clientFlags(fs)
	tube := fs.String("tube", beanspike.DefaultTube, "`tube` to put into")
	pri := fs.Uint("pri", uint(beanspike.DefaultPriority), "`priority` (lower is more urgent)")
	delay := fs.Duration("delay", 0, "keep the job delayed this long")
	ttr := fs.Duration("ttr", beanspike.DefaultTTR, "time-to-run")
	compress := fs.Bool("compress", false, "store the body LZ4-compressed when that makes it smaller")
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	if *pri > 1<<32-1 {
		return usageErr(fs, "priority %d over 2^32-1", *pri)
	}
	var body []byte
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		body = []byte(fs.Arg(0))
	} else {
		var err error
		if body, err = io.ReadAll(a.stdin); err != nil {
			return fmt.Errorf("read the body: %w", err)
		}
	}
	opts := []beanspike.PutOption{beanspike.WithPriority(uint32(*pri)), beanspike.WithDelay(*delay), beanspike.WithTTR(*ttr)}
	if *compress {
		opts = append(opts, beanspike.WithCompression())
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		id, err := q.Put(ctx, *tube, body, opts...)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, id)
		return nil
	})
}

// tubeList is a repeatable -tube flag that also takes comma-separated
// lists.
type tubeList []string

func (t *tubeList) String() string { return strings.Join(*t, ",") }
func (t *tubeList) Set(s string) error {
	*t = append(*t, strings.Split(s, ",")...)
	return nil
}

func (a *app) reserve(ctx context.Context, args []string) error {
	fs := a.flags("reserve", "")
	cf := a.clientFlags(fs)
	var tubes tubeList
	fs.Var(&tubes, "tube", "`tube` to watch (repeatable, or comma-separated; default \"default\")")
	wait := fs.Duration("wait", 0, "how long to wait for a job (0: take a ready job or fail at once)")
	del := fs.Bool("delete", false, "delete the job after printing it (else it returns to ready on exit)")
	bodyOnly := fs.Bool("body", false, "print only the body")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		rctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		j, err := q.Reserve(rctx, tubes...)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("%w in %s (waited %s)", errNothingReady, strings.Join(defaultTubes(tubes), ", "), *wait)
			}
			return err
		}
		a.printJob(j, *bodyOnly)
		if *del {
			return q.Delete(ctx, j.ID)
		}
		return nil
	})
}

func defaultTubes(t []string) []string {
	if len(t) == 0 {
		return []string{beanspike.DefaultTube}
	}
	return t
}

func (a *app) delete(ctx context.Context, args []string) error {
	fs := a.flags("delete", "ID...")
	cf := a.clientFlags(fs)
	if err := parse(fs, args, 1, -1); err != nil {
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
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		var errs []error
		for _, id := range ids {
			if err := q.Delete(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("job %d: %w", id, err))
				continue
			}
			fmt.Fprintf(a.stdout, "deleted %d\n", id)
		}
		return errors.Join(errs...)
	})
}

// withTaken runs release or bury: its argument is one job ID, and -pri
// sets the job's new priority. A client command holds no reservation of
// its own, so withTaken takes the job first, as reserve-job, then calls f
// with the priority to give it: -pri if set, else the job's.
func (a *app) withTaken(ctx context.Context, fs *flag.FlagSet, args []string, f func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error) error {
	cf := a.clientFlags(fs)
	pri := fs.Int64("pri", -1, "new `priority` (default: keep the job's)")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	id, err := parseID(fs, fs.Arg(0))
	if err != nil {
		return err
	}
	if *pri > 1<<32-1 {
		return usageErr(fs, "priority %d over 2^32-1", *pri)
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		j, err := q.ReserveJob(ctx, id)
		if err != nil {
			return fmt.Errorf("take job %d (it must be ready, delayed or buried): %w", id, err)
		}
		p := j.Priority
		if *pri >= 0 {
			p = uint32(*pri)
		}
		return f(ctx, q, id, p)
	})
}

func (a *app) release(ctx context.Context, args []string) error {
	fs := a.flags("release", "ID")
	delay := fs.Duration("delay", 0, "delay the job this long")
	return a.withTaken(ctx, fs, args, func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error {
		if err := q.Release(ctx, id, pri, *delay); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "released %d (priority %d, delay %s)\n", id, pri, *delay)
		return nil
	})
}

func (a *app) bury(ctx context.Context, args []string) error {
	fs := a.flags("bury", "ID")
	reason := fs.String("reason", "", "why the job is buried (stats -job shows it)")
	return a.withTaken(ctx, fs, args, func(ctx context.Context, q beanspike.Queue, id beanspike.ID, pri uint32) error {
		if err := q.Bury(ctx, id, pri, *reason); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "buried %d\n", id)
		return nil
	})
}

func (a *app) kick(ctx context.Context, args []string) error {
	fs := a.flags("kick", "[N]")
	cf := a.clientFlags(fs)
	tube := fs.String("tube", beanspike.DefaultTube, "`tube` to kick")
	job := fs.Uint64("job", 0, "kick this one job `ID` instead")
	if err := parse(fs, args, 0, 1); err != nil {
		return err
	}
	n := 1
	if fs.NArg() == 1 {
		if *job != 0 {
			return usageErr(fs, "give either -job or N")
		}
		v, err := strconv.Atoi(fs.Arg(0))
		if err != nil || v < 0 {
			return usageErr(fs, "%q is not a count", fs.Arg(0))
		}
		n = v
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		if *job != 0 {
			if err := q.KickJob(ctx, beanspike.ID(*job)); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "kicked %d\n", *job)
			return nil
		}
		k, err := q.Kick(ctx, *tube, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "kicked %d jobs\n", k)
		return nil
	})
}

func (a *app) peek(ctx context.Context, args []string) error {
	fs := a.flags("peek", "[ID]")
	cf := a.clientFlags(fs)
	tube := fs.String("tube", beanspike.DefaultTube, "`tube` for -ready, -delayed and -buried")
	ready := fs.Bool("ready", false, "peek the next ready job of the tube")
	delayed := fs.Bool("delayed", false, "peek the delayed job of the tube due soonest")
	buried := fs.Bool("buried", false, "peek the job of the tube buried longest ago")
	bodyOnly := fs.Bool("body", false, "print only the body")
	if err := parse(fs, args, 0, 1); err != nil {
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
			j   *beanspike.Job
			err error
		)
		switch {
		case *ready:
			j, err = q.PeekReady(ctx, *tube)
		case *delayed:
			j, err = q.PeekDelayed(ctx, *tube)
		case *buried:
			j, err = q.PeekBuried(ctx, *tube)
		default:
			j, err = q.Peek(ctx, id)
		}
		if err != nil {
			return err
		}
		a.printJob(j, *bodyOnly)
		return nil
	})
}

func (a *app) stats(ctx context.Context, args []string) error {
	fs := a.flags("stats", "[TUBE...]")
	cf := a.clientFlags(fs)
	job := fs.Uint64("job", 0, "describe this job `ID` instead of tubes")
	if err := parse(fs, args, 0, -1); err != nil {
		return err
	}
	if *job != 0 && fs.NArg() > 0 {
		return usageErr(fs, "give either -job or tubes")
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		if *job != 0 {
			s, err := q.StatsJob(ctx, beanspike.ID(*job))
			if err != nil {
				return err
			}
			a.printJobStats(s)
			return nil
		}
		tubes := fs.Args()
		if len(tubes) == 0 {
			var err error
			if tubes, err = q.Tubes(ctx); err != nil {
				return err
			}
		}
		w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TUBE\tREADY\tURGENT\tRESERVED\tDELAYED\tBURIED\tWAITING\tTOTAL\tDELETES\tPAUSED")
		var errs []error
		for _, t := range tubes {
			s, err := q.StatsTube(ctx, t)
			if err != nil {
				errs = append(errs, fmt.Errorf("tube %s: %w", t, err))
				continue
			}
			paused := "-"
			if s.PauseLeft > 0 {
				paused = s.PauseLeft.Round(time.Second).String()
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Ready, s.Urgent, s.Reserved, s.Delayed, s.Buried, s.Waiting, s.TotalJobs, s.Deletes, paused)
		}
		w.Flush()
		return errors.Join(errs...)
	})
}

func (a *app) printJobStats(s *beanspike.JobStats) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
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
}

func (a *app) tubes(ctx context.Context, args []string) error {
	fs := a.flags("tubes", "")
	cf := a.clientFlags(fs)
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	return a.withConn(ctx, cf, func(ctx context.Context, q beanspike.Queue) error {
		tubes, err := q.Tubes(ctx)
		if err != nil {
			return err
		}
		for _, t := range tubes {
			fmt.Fprintln(a.stdout, t)
		}
		return nil
	})
}

func (a *app) pause(ctx context.Context, args []string) error {
	fs := a.flags("pause", "DURATION")
	cf := a.clientFlags(fs)
	tube := fs.String("tube", beanspike.DefaultTube, "`tube` to pause")
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
		if d == 0 {
			fmt.Fprintf(a.stdout, "tube %s unpaused\n", *tube)
		} else {
			fmt.Fprintf(a.stdout, "tube %s paused for %s\n", *tube, d)
		}
		return nil
	})
}
