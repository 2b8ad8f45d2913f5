// Command aerospiketest runs the Aerospike-compatible test server of
// package aerospiketest as a process of its own, for trying the Aerospike
// backend without an Aerospike server, or for measuring it with the
// server outside the client's process:
//
//	go run ./backend/aerospike/aerospiketest/cmd/aerospiketest [-addr 127.0.0.1:3000] [-namespace test]
//
// It serves until interrupted (SIGINT or SIGTERM). Data lives in memory
// only and goes with the process.
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

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "aerospiketest:", err)
		}
		os.Exit(2)
	}
}

// run starts the server as args say, reports where it listens on out,
// and serves until ctx is done.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("aerospiketest", flag.ContinueOnError)
	fs.SetOutput(errOut)
	addr := fs.String("addr", "127.0.0.1:3000", "host:port to listen on")
	ns := fs.String("namespace", aerospiketest.DefaultNamespace, "namespace to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	srv, err := aerospiketest.NewServer(aerospiketest.WithAddr(*addr),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: *ns}))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving namespace %q on %s\n", *ns, srv.Addr())
	<-ctx.Done()
	return srv.Close()
}
