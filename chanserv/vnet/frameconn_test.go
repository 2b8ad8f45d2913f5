package vnet

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// writeLog is a net.Conn that records each Write it is given and passes
// it on to the connection it wraps, if any.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	w.mu.Unlock()
	if w.Conn == nil {
		return len(p), nil
	}
	return w.Conn.Write(p)
}

func (w *writeLog) log() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.writes...)
}

func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 7) // stream id
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func TestFrameConnWrites(t *testing.T) {
	const (
		data   = 0
		window = 1
		ping   = 2
	)
	large := bytes.Repeat([]byte("x"), mergeCopyMax+1)
	tests := []struct {
		name   string
		writes [][]byte
		want   [][]byte // the writes reaching the connection
	}{
		{"data frame", [][]byte{yamuxHeader(data, 3), []byte("abc")},
			[][]byte{append(yamuxHeader(data, 3), "abc"...)}},
		{"window update", [][]byte{yamuxHeader(window, 3)},
			[][]byte{yamuxHeader(window, 3)}},
		{"ping", [][]byte{yamuxHeader(ping, 99)},
			[][]byte{yamuxHeader(ping, 99)}},
		{"empty data frame", [][]byte{yamuxHeader(data, 0)},
			[][]byte{yamuxHeader(data, 0)}},
		{"body not as announced", [][]byte{yamuxHeader(data, 3), []byte("ab")},
			[][]byte{yamuxHeader(data, 3), []byte("ab")}},
		{"body of a header's size", [][]byte{yamuxHeader(data, 12), yamuxHeader(data, 5)},
			[][]byte{append(yamuxHeader(data, 12), yamuxHeader(data, 5)...)}},
		{"header after an unexpected write", [][]byte{yamuxHeader(data, 3), []byte("ab"), yamuxHeader(data, 1), []byte("c")},
			[][]byte{yamuxHeader(data, 3), []byte("ab"), append(yamuxHeader(data, 1), 'c')}},
		{"large frame", [][]byte{yamuxHeader(data, uint32(len(large))), large},
			// A connection without writev gets the two pieces in order.
			[][]byte{yamuxHeader(data, uint32(len(large))), large}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wl := &writeLog{}
			fc := newFrameConn(wl)
			for i, p := range tt.writes {
				n, err := fc.Write(p)
				if err != nil || n != len(p) {
					t.Fatalf("write %d: %d, %v; want %d", i, n, err, len(p))
				}
			}
			got := wl.log()
			if len(got) != len(tt.want) {
				t.Fatalf("%d writes reached the connection, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("write %d: % x, want % x", i, got[i][:min(len(got[i]), 32)], tt.want[i][:min(len(tt.want[i]), 32)])
				}
			}
		})
	}
}

// TestFrameConnYamux runs yamux over frameConn: data in both directions,
// a transfer larger than the stream window (which needs window updates),
// pings and stream close all get through, and no data frame's header is
// written apart from its body.
func TestFrameConnYamux(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.ConnectionWriteTimeout = 5 * time.Second
	clog, slog := &writeLog{Conn: cc}, &writeLog{Conn: sc}
	client, err := yamux.Client(newFrameConn(clog), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := yamux.Server(newFrameConn(slog), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	done := make(chan error, 1)
	go func() {
		st, err := server.AcceptStream()
		if err != nil {
			done <- err
			return
		}
		defer st.Close()
		// Echo everything back, then close.
		_, err = io.Copy(st, st)
		done <- err
	}()
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	for i := range 50 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i)
		if _, err := st.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
	if _, err := client.Ping(); err != nil {
		t.Fatalf("client ping: %v", err)
	}
	if _, err := server.Ping(); err != nil {
		t.Fatalf("server ping: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*int(cfg.MaxStreamWindowSize)/16)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(big)
		if err == nil {
			err = st.Close() // half-close: reading goes on
		}
		werr <- err
	}()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("large echo: %d bytes, %v", len(got), err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for side, wl := range map[string]*writeLog{"client": clog, "server": slog} {
		for _, p := range wl.log() {
			if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData {
				if n := binary.BigEndian.Uint32(p[8:]); n > 0 && n <= mergeCopyMax {
					t.Fatalf("%s: a data header for %d bytes written alone", side, n)
				}
			}
		}
	}
}
