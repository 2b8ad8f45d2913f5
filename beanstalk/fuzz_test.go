package beanstalk

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

var fuzzSeeds = []string{
	"put 1 0 10 3\r\nabc\r\n",
	"put 4294967295 4294967295 4294967295 0\r\n\r\n",
	"put 1 0 10 3x\r\nabc\r\n",
	"reserve-with-timeout 0\r\n",
	"reserve-with-timeout -1\r\n",
	"reserve-job 1\r\n",
	"release 1 2 3\r\n",
	"bury 1 2\r\n",
	"kick -1\r\n",
	"kick-job 1\r\n",
	"pause-tube default 1\r\n",
	"pause-tubedefault 0\r\n",
	"use a_b\r\nwatch x\r\nignore default\r\nlist-tubes-watched\r\n",
	"stats-tube default\r\nstats-job 1\r\nstats\r\nlist-tubes\r\n",
	"peek 1\r\npeek-ready\r\npeek-delayed\r\npeek-buried\r\n",
	"delete-tube default\r\n",
	"use a\x00b\r\n",
	"use foo\rbar\r\n",
	strings.Repeat("x", 300) + "\r\n",
	"quit\r\n",
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, ext bool) {
		n, overflow := scanLine(in)
		if n > lineMax || (n > 0 && overflow) {
			t.Fatalf("scanLine(%q) = %d, %v", in, n, overflow)
		}
		if n > 0 && !bytes.Equal(in[n-2:n], []byte("\r\n")) {
			t.Fatalf("scanLine(%q) = %d, not at a CRLF", in, n)
		}
		line := in
		if n > 0 {
			line = in[:n-2]
		}
		c := parseCommand(line, 65535, ext)
		switch c.errReply {
		case "", msgBadFormat, msgUnknownCommand, msgJobTooBig:
		default:
			t.Fatalf("parseCommand(%q): reply %q", line, c.errReply)
		}
		if c.op >= numOps || (c.op == opDeleteTube && !ext) {
			t.Fatalf("parseCommand(%q): op %d", line, c.op)
		}
		if c.op == opUnknown && (c.counted || c.errReply == "") {
			t.Fatalf("parseCommand(%q): unknown command counted or not refused: %+v", line, c)
		}
		if c.skip != 0 && (c.op != opPut || c.errReply != msgJobTooBig || c.skip != int64(c.size)+2) {
			t.Fatalf("parseCommand(%q): bad skip %+v", line, c)
		}
		if c.errReply == "" && c.tube != "" && (len(c.tube) > 200 || strings.ContainsAny(c.tube, " \r\n\x00")) {
			t.Fatalf("parseCommand(%q): bad tube %q", line, c.tube)
		}
	})
}

// FuzzConn feeds arbitrary bytes to a connection over net.Pipe: the
// server must neither crash nor hang, whatever it is sent. Each input
// gets a fresh store and server, which makes executions slow-ish: run it
// with a short -fuzzminimizetime (e.g. 5s), or the engine spends minutes
// minimising each new input.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// A reserve that waits notices the peer's hangup only while its
		// pipelined input fits the read buffer (see the package doc).
		if len(in) > readBufSize-lineMax {
			in = in[:readBufSize-lineMax]
		}
		// A fresh store each time: state piling up across inputs would
		// make later ones slower and slower.
		root, err := memory.New()
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		srv, err := NewServer(func() (beanspike.Queue, error) { return root.NewClient() },
			WithMaxJobSize(1024), WithDeleteTube())
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		a, b := net.Pipe()
		served := make(chan error, 1)
		go func() { served <- srv.ServeConn(b) }()
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, a)
			close(drained)
		}()
		a.SetWriteDeadline(time.Now().Add(2 * time.Second))
		a.Write(in)
		a.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection fed %q did not end", in)
		}
		<-drained
	})
}
