package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
)

func TestRunServesUntilCancelled(t *testing.T) {
	// A free port: listen, note it, let it go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", addr, "-namespace", "jobs"}, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.Contains(line, addr) {
		t.Fatalf("first line %q, %v; want the address %s", line, err, addr)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	client, err := as.NewClient(host, port)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := as.NewKey("jobs", "s", 1)
	if err := client.Put(nil, key, as.BinMap{"v": 7}); err != nil {
		t.Fatal(err)
	}
	rec, err := client.Get(nil, key)
	if err != nil || rec.Bins["v"] != 7 {
		t.Fatalf("Get = %v, %v; want v 7", rec, err)
	}
	client.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after run returned")
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "no-port"},
		{"-namespace", ""},
		{"extra"},
		{"-nosuchflag"},
		{"-max-record-size", "9000000"},
		{"-nsup-period", "1500ms"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
