package frame_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
	"github.com/beanspike/beanspike/internal/adversarial/frame"
)

// serve runs a remote server on a vnet node listening on loopback and
// returns its TCP address and a client of its store.
func serve(t *testing.T) (string, beanspike.Queue) {
	t.Helper()
	store, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
	if err != nil {
		t.Fatal(err)
	}
	node, err := vnet.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); node.Close() })
	if err := srv.Listen(node, remote.DefaultService); err != nil {
		t.Fatal(err)
	}
	addr, err := node.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return addr.String(), q
}

// TestPingIsAnswered sends a crafted yamux ping on a raw connection and
// waits for the node's answer with the same id.
func TestPingIsAnswered(t *testing.T) {
	addr, _ := serve(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame.Ping(nil, 77)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var h [frame.YamuxHeaderSize]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("no answer to the ping: %v", err)
		}
		typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
		length := binary.BigEndian.Uint32(h[8:])
		if typ == frame.TypePing && flags&frame.FlagACK != 0 && length == 77 {
			return
		}
		if typ == frame.TypeData {
			br.Discard(int(length))
		}
	}
}

// TestCraftedSession opens a remote session from crafted bytes on a vnet
// stream, puts a job and peeks at it, and checks that the job was stored
// and both calls answered.
func TestCraftedSession(t *testing.T) {
	addr, q := serve(t)
	node, err := vnet.New()
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Connect(ctx, "tcp", addr); err != nil {
		t.Fatal(err)
	}
	c, err := node.DialContext(ctx, "", remote.DefaultService)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b := frame.ChanservPreamble(nil)
	b = frame.ChanservRequest(b, frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
	b = frame.ChanservMessage(b, frame.Put(nil, 1, "crafted", []byte("crafted body")))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	pre := make([]byte, 8)
	if _, err := io.ReadFull(br, pre); err != nil || string(pre[:4]) != "CHSV" {
		t.Fatalf("preamble %q, %v", pre, err)
	}
	if p := reply(t, br, 1); p[0] != 1 { // the job id
		t.Fatalf("put's reply: % x", p)
	}
	if _, err := c.Write(frame.ChanservMessage(nil, frame.Call(nil, frame.OpPeek, 2, 1))); err != nil {
		t.Fatal(err)
	}
	if p := reply(t, br, 2); !bytes.Contains(p, []byte("crafted body")) {
		t.Fatalf("peek's reply lacks the body: %q", p)
	}
	j, err := q.Peek(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if j.Tube != "crafted" || string(j.Body) != "crafted body" {
		t.Fatalf("stored %q in %q", j.Body, j.Tube)
	}
}

// reply reads chanserv frames until the successful reply of call id, and
// returns its result.
func reply(t *testing.T, br *bufio.Reader, id uint64) []byte {
	t.Helper()
	for {
		kind, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		if _, err := binary.ReadUvarint(br); err != nil {
			t.Fatal(err)
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		if kind != 0x12 { // DATA: a reply
			continue
		}
		got, k := binary.Uvarint(p)
		if k <= 0 || len(p) <= k {
			t.Fatalf("reply % x", p)
		}
		if got != id {
			continue
		}
		if code := p[k]; code != 0 {
			t.Fatalf("call %d failed with code %d: %q", id, code, p[k+1:])
		}
		return p[k+1:]
	}
}
