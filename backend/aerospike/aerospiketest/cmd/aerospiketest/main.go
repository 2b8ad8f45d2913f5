// Command aerospiketest runs the Aerospike-compatible test server of
// package aerospiketest as a process of its own, for trying the Aerospike
// backend without an Aerospike server, or for measuring it with the
// server outside the client's process:
//
//	go run ./backend/aerospike/aerospiketest/cmd/aerospiketest [-addr 127.0.0.1:3000] [-namespace test]
//		[-max-record-size 1048576] [-nsup-period 0s] [-allow-ttl-without-nsup]
//
// The namespace settings default to Aerospike's defaults; records with a
// TTL need a nonzero -nsup-period or -allow-ttl-without-nsup.
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
	maxRecord := fs.Int("max-record-size", aerospiketest.DefaultMaxRecordSize, "the namespace's max-record-size in bytes")
	nsup := fs.Duration("nsup-period", 0, "the namespace's nsup-period, in whole seconds")
	allowTTL := fs.Bool("allow-ttl-without-nsup", false, "accept TTLs with a zero nsup-period")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	srv, err := aerospiketest.NewServer(aerospiketest.WithAddr(*addr),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{
			Name: *ns, MaxRecordSize: *maxRecord, NsupPeriod: *nsup, AllowTTLWithoutNsup: *allowTTL,
		}))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving namespace %q on %s\n", *ns, srv.Addr())
	<-ctx.Done()
	return srv.Close()
}
