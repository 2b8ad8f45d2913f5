package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike/internal/syncbuf"
)

// Stopping a server on the memory store says how many jobs it loses.
func TestServeWarnsOfLostJobs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncbuf.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(string) string { return "" })
	ready := make(chan string, 1)
	a.ready = func(r, _ string) { ready <- r }
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, []string{"serve", "-listen", "127.0.0.1:0"}) }()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not start:\n%s", errb.String())
	}
	want(t, runCmd(t, addr, "", "put", "one"), exitOK)
	want(t, runCmd(t, addr, "", "put", "-delay", "1h", "two"), exitOK)
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited %d:\n%s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if log := errb.String(); !strings.Contains(log, "jobs are lost") || !strings.Contains(log, "jobs=2") {
		t.Fatalf("the log does not say that 2 jobs are lost:\n%s", log)
	}
}
