// Command beanspike runs a beanspike job server and talks to one.
//
// Usage:
//
//	beanspike serve [flags]             run a server (memory store by default)
//	beanspike demo                      show a job's life cycle on an embedded queue
//	beanspike put [flags] [BODY]        put a job (BODY, or standard input)
//	beanspike reserve [flags]           reserve a job and print it
//	beanspike delete ID...              delete jobs
//	beanspike release [flags] ID        take a job and release it (new priority, delay)
//	beanspike bury [flags] ID           take a job and bury it
//	beanspike kick [flags] [N]          kick N buried (else delayed) jobs of a tube
//	beanspike peek [flags] [ID]         show a job without reserving it
//	beanspike stats [flags] [TUBE...]   show tube statistics as a table, or a job's
//	beanspike tubes                     list the tubes
//	beanspike pause [flags] DURATION    pause a tube (0 ends the pause)
//
// Client commands reach the server given by -addr, which defaults to
// $BEANSPIKE_ADDR or 127.0.0.1:7420. Each run of a client command is one
// session: a job it reserves returns to ready when it exits, unless the
// command deleted, released or buried it.
//
// Exit status: 0 on success, 1 on an error, 2 on a usage error, 3 when
// the job or tube was not found, or nothing was ready in time (reserve,
// peek).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	// ready, if set, is called by serve once it listens, with the
	// addresses of its remote and beanstalk listeners ("" if none).
	ready func(remoteAddr, beanstalkAddr string)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
}

// errUsage marks an error in the command line; its message has been
// printed with the usage.
var errUsage = errors.New("usage error")

type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run a server (memory store by default)", (*app).serve},
		{"demo", "show a job's life cycle on an embedded queue", (*app).demo},
		{"put", "put a job", (*app).put},
		{"reserve", "reserve a job and print it", (*app).reserve},
		{"delete", "delete jobs", (*app).delete},
		{"release", "take a job and release it with a new priority or delay", (*app).release},
		{"bury", "take a job and bury it", (*app).bury},
		{"kick", "kick buried (else delayed) jobs, or one job", (*app).kick},
		{"peek", "show a job without reserving it", (*app).peek},
		{"stats", "show tube statistics, or a job's", (*app).stats},
		{"tubes", "list the tubes", (*app).tubes},
		{"pause", "pause a tube", (*app).pause},
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
		fmt.Fprintf(a.stderr, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(a.stderr, "\nRun beanspike <command> -h for a command's flags.\n"+
		"Exit status: 0 ok, 1 error, 2 usage error, 3 not found or nothing ready in time.\n")
}

// exit prints err, if any, and maps it to an exit status.
func (a *app) exit(name string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "beanspike %s: %v\n", name, err)
	if isNotFound(err) {
		return exitNotFound
	}
	return exitError
}

// flags returns a flag set for a command whose errors go to stderr.
func (a *app) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "usage: beanspike %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs and checks the number of positional
// arguments.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if n := fs.NArg(); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		fmt.Fprintf(fs.Output(), "beanspike %s: wrong number of arguments\n", fs.Name())
		fs.Usage()
		return errUsage
	}
	return nil
}

// usageErr prints a usage error for fs.
func usageErr(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "beanspike %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}
