// Command beanspike runs a beanspike job server and talks to one.
//
// Usage:
//
//	beanspike serve [flags]             run a server (memory store by default)
//	beanspike demo                      show a job's life cycle on an embedded queue
//	beanspike put [flags] [BODY]        put a job (BODY, or standard input) and print its ID
//	beanspike reserve [flags]           reserve a job and print it
//	beanspike work [flags] COMMAND      run COMMAND for each job of a tube
//	beanspike delete ID...              delete jobs
//	beanspike release [flags] [ID]      release the job a work command holds (-take: any job)
//	beanspike bury [flags] [ID]         bury the job a work command holds (-take: any job)
//	beanspike touch [ID]                extend the reservation of the job a work command holds
//	beanspike kick [flags] N            kick up to N buried (else delayed) jobs of a tube
//	beanspike peek [flags] [ID]         show a job without reserving it
//	beanspike stats [flags] [TUBE...]   show tube statistics as a table, or a job's
//	beanspike tubes                     list the tubes
//	beanspike pause [flags] DURATION    pause a tube (0 ends the pause)
//	beanspike delete-tube TUBE...       delete tubes and every job in them
//
// Client commands reach the server given by -addr, which defaults to
// $BEANSPIKE_ADDR or 127.0.0.1:7420. Each run of a client command is one
// client of the server, with reservations of its own: a job it reserves
// returns to ready when it exits, unless the command deleted, released
// or buried it, and it cannot release, bury or touch a job that another
// run reserved. The commands that a work command runs for its jobs reach
// that work command instead for their job: there, release, bury, touch
// and delete act on the job it holds.
//
// The read commands (put, reserve, peek, stats, tubes) take -json for
// machine-readable output. Output is written in full before anything is
// deleted: a reserve -delete whose output cannot be written leaves the
// job in the queue.
//
// Exit status: 0 on success; 1 on an error; 2 on a usage error or bad
// input (a bad flag value or tube name, a body over the server's limit);
// 3 when the job or tube was not found, the job is reserved by another
// client, or nothing was ready in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beanspike/beanspike"
)

// Exit statuses.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitNotFound = 3
)

// EnvAddr is the environment variable that sets the default -addr.
const EnvAddr = "BEANSPIKE_ADDR"

// DefaultAddr is the default address of a server's remote clients.
const DefaultAddr = "127.0.0.1:7420"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is one run of the command, with its input, outputs and
// environment, so that tests can run it in process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// environ is the environment of the commands that work runs, before
	// the job's variables are added.
	environ func() []string
	// terminal tells whether a.stdin or a.stderr is a terminal: put then
	// says that it reads standard input, and long operations show their
	// progress on stderr.
	terminal func(f any) bool
	// progressDelay is how long an operation runs before its progress
	// shows.
	progressDelay time.Duration
	// kickBatch is the most jobs one Kick call of the kick command moves.
	kickBatch int
	// ready, if set, is called by serve once it listens, with the
	// addresses of its remote and beanstalk listeners ("" if none).
	ready func(remoteAddr, beanstalkAddr string)

	logMu sync.Mutex // serialises the lines work writes to stderr
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		environ:       os.Environ,
		terminal:      isTerminal,
		progressDelay: 500 * time.Millisecond,
		kickBatch:     10000,
	}
}

// errUsage marks an error in the command line; its message has been
// printed.
var errUsage = errors.New("usage error")

// cliError is an error as the command reports it: its message, and the
// exit status it gives. It wraps its cause, if any, for errors.Is.
type cliError struct {
	msg  string
	code int
	err  error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// failf returns a cliError with exit status code, cause err (may be nil)
// and a message made from format and args.
func failf(code int, err error, format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...), code: code, err: err}
}

type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run a server (memory store by default)", (*app).serve},
		{"demo", "show a job's life cycle on an embedded queue", (*app).demo},
		{"put", "put a job (BODY, or standard input) and print its ID", (*app).put},
		{"reserve", "reserve a job and print it", (*app).reserve},
		{"work", "run a command for each job of a tube", (*app).work},
		{"delete", "delete jobs", (*app).delete},
		{"release", "release the job a work command holds, or take one with -take", (*app).release},
		{"bury", "bury the job a work command holds, or take one with -take", (*app).bury},
		{"touch", "extend the reservation of the job a work command holds", (*app).touch},
		{"kick", "kick up to N buried (else delayed) jobs, or one job", (*app).kick},
		{"peek", "show a job without reserving it", (*app).peek},
		{"stats", "show tube statistics, or a job's", (*app).stats},
		{"tubes", "list the tubes", (*app).tubes},
		{"pause", "pause a tube", (*app).pause},
		{"delete-tube", "delete tubes and every job in them", (*app).deleteTube},
	}
}

// run runs the command line args (without the program name) and returns
// the exit status.
func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage()
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) > 1 && name == "help" {
			return a.run(ctx, []string{args[1], "-h"})
		}
		a.usage()
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return a.exit(name, c.run(a, ctx, args[1:]))
		}
	}
	fmt.Fprintf(a.stderr, "beanspike: unknown command %q\n", name)
	a.usage()
	return exitUsage
}

func (a *app) usage() {
	fmt.Fprintf(a.stderr, "usage: beanspike <command> [flags] [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(a.stderr, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(a.stderr, "\nRun beanspike help <command> for a command's flags.\n"+
		"Exit status: 0 ok, 1 error, 2 usage error or bad input, 3 not found or nothing ready in time.\n")
}

// exit prints err, if any, one line per error, and maps it to an exit
// status.
func (a *app) exit(name string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	code := -1
	for _, e := range flatten(err) {
		fmt.Fprintf(a.stderr, "beanspike %s: %s\n", name, message(e))
		switch c := exitCode(e); {
		case code == -1:
			code = c
		case code != c:
			code = exitError
		}
	}
	return code
}

// flatten returns the errors that err joins, at any depth, or err.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, flatten(e)...)
	}
	return errs
}

// exitCode is the exit status that err gives.
func exitCode(err error) int {
	var ce *cliError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, errUsage),
		errors.Is(err, beanspike.ErrInvalidTube),
		errors.Is(err, beanspike.ErrInvalidArgument),
		errors.Is(err, beanspike.ErrJobTooBig):
		return exitUsage
	case errors.Is(err, beanspike.ErrNotFound),
		errors.Is(err, beanspike.ErrNotReserved),
		errors.Is(err, errNothingReady):
		return exitNotFound
	}
	return exitError
}

// message is err's text without the "beanspike: " of the package's
// sentinels, which the command's own prefix already says.
func message(err error) string {
	return strings.ReplaceAll(err.Error(), "beanspike: ", "")
}

// flags returns a flag set for a command whose usage (on -h) prints
// args.
func (a *app) flags(name, args string) *flag.FlagSet {
	return a.flagsAbout(name, args, "")
}

// flagsAbout returns a flag set for a command whose usage (on -h) prints
// args and about, a description of the command.
func (a *app) flagsAbout(name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "usage: beanspike %s [flags] %s\n", name, args)
		if about != "" {
			fmt.Fprintf(a.stderr, "\n%s\n\nflags:\n", about)
		}
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs and checks the number of positional
// arguments (maxArgs < 0: no limit). A bad command line prints one line
// saying what is wrong, and a hint.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageErr(fs, "%v", err)
	}
	if n := fs.NArg(); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		return usageErr(fs, "wrong number of arguments")
	}
	return nil
}

// usageErr prints a usage error for fs: what is wrong, and where to
// find the command's usage.
func usageErr(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "beanspike %s: %s\nRun beanspike help %s for usage.\n", fs.Name(), fmt.Sprintf(format, args...), fs.Name())
	return errUsage
}

// isTerminal tells whether f is an *os.File open on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok || file == nil {
		return false
	}
	fi, err := file.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// Character devices include /dev/null and the like: where /proc
	// names the file, only a tty counts.
	if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", file.Fd())); err == nil {
		return strings.HasPrefix(target, "/dev/pts/") || strings.HasPrefix(target, "/dev/tty") || target == "/dev/console"
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// progress shows status, refreshed, on one line of stderr while a long
// operation runs, once it has run for a.progressDelay, if stderr is a
// terminal. The returned stop clears the line; it must be called before
// anything else is written to stderr. status is called from another
// goroutine.
func (a *app) progress(status func(elapsed time.Duration) string) (stop func()) {
	if !a.terminal(a.stderr) {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		t := time.NewTimer(a.progressDelay)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(a.stderr, "\r\033[K")
				}
				return
			case <-t.C:
			}
			fmt.Fprintf(a.stderr, "\r\033[K%s", status(time.Since(start)))
			shown = true
			t.Reset(200 * time.Millisecond)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

// emit writes out to stdout in one write and flushes stdout if it can
// be flushed.
func (a *app) emit(out []byte) error {
	if _, err := a.stdout.Write(out); err != nil {
		return err
	}
	if f, ok := a.stdout.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}
