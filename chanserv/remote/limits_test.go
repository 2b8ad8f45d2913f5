package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
)

// fakeServer serves one session per client on a new in-memory network:
// it sends hello as the reply stream's header, then, for each call, the
// frames reply returns. It stops answering when reply returns nil.
func fakeServer(t *testing.T, hello []byte, reply func(op byte, id uint64) [][]byte) *memmux.Network {
	t.Helper()
	mux := memmux.New()
	srv, err := chanserv.NewServer(mux)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	err = srv.Handle(DefaultService, chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
		out, err := w.NewSource(ctx, hello)
		if err != nil {
			return err
		}
		for {
			msg, err := req.Recv(ctx)
			if err != nil {
				return err
			}
			d := dec{b: msg}
			op, id := d.byte(), d.uvarint()
			frames := reply(op, id)
			if frames == nil {
				<-ctx.Done()
				return ctx.Err()
			}
			for _, f := range frames {
				if err := out.WriteFrame(ctx, f); err != nil {
					return err
				}
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	return mux
}

// framedJob is the reply to a Reserve carrying one job whose body of n
// bytes is announced to follow in frames.
func framedJob(id uint64, n uint64) []byte {
	b := appendHeader(nil, id, codeOK)
	b = append(b, 0) // no more jobs
	b = binary.AppendUvarint(b, 1)
	b = appendString(b, "t")
	b = binary.AppendUvarint(b, 0)
	b = appendDuration(b, time.Minute)
	b = binary.AppendUvarint(b, 1)
	b = append(b, bodyFrames)
	return binary.AppendUvarint(b, n)
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func dialFake(t *testing.T, mux chanserv.Multiplexer, opts ...Option) *Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := Dial(ctx, mux, DefaultService, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestClientRejectsAnnouncedBody has a server announce job bodies longer
// than its hello allowed, 1 TiB among them: the client ends the session
// as broken, and allocates nothing for the body.
func TestClientRejectsAnnouncedBody(t *testing.T) {
	for _, n := range []uint64{1 << 40, 1<<30 + 1, 2 << 20} {
		hello := appendHello(nil, version, 1<<20, 1<<20)
		mux := fakeServer(t, hello, func(op byte, id uint64) [][]byte {
			return [][]byte{framedJob(id, n)}
		})
		q := dialFake(t, mux)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		before := totalAlloc()
		_, err := q.Reserve(ctx, "t")
		cancel()
		if !errors.Is(err, beanspike.ErrUnavailable) {
			t.Fatalf("Reserve with a body of %d bytes announced: %v, want ErrUnavailable for a malformed reply", n, err)
		}
		if d := totalAlloc() - before; d > 16<<20 {
			t.Fatalf("client allocated %d bytes after a body of %d bytes was announced", d, n)
		}
	}
}

// TestClientAllocatesBodyAsItArrives has a server announce a body of
// 1 GiB, within its hello's limit, and send 64 KiB of it: the client
// allocates for what arrived.
func TestClientAllocatesBodyAsItArrives(t *testing.T) {
	sent := make(chan struct{})
	hello := appendHello(nil, version, 1<<20, 1<<30)
	mux := fakeServer(t, hello, func(op byte, id uint64) [][]byte {
		if op != opReserve {
			return [][]byte{appendHeader(nil, id, codeOK)}
		}
		defer close(sent)
		return [][]byte{framedJob(id, 1<<30), make([]byte, chunkSize), nil}
	})
	q := dialFake(t, mux, WithCallTimeout(200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := totalAlloc()
	got := make(chan error, 1)
	go func() {
		_, err := q.Reserve(ctx, "t")
		got <- err
	}()
	<-sent
	// The empty frame after the chunk is read only once the chunk was
	// taken in; give the reader a moment to take the empty one too.
	time.Sleep(50 * time.Millisecond)
	if d := totalAlloc() - before; d > 64<<20 {
		t.Fatalf("client allocated %d bytes for 64 KiB of a 1 GiB body", d)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve cancelled while its body arrives: %v, want context.Canceled", err)
	}
}

// bigTubes answers Tubes with 20 MB of names.
type bigTubes struct{ beanspike.Queue }

func (bigTubes) Tubes(context.Context) ([]string, error) {
	tubes := make([]string, 100_000)
	for i := range tubes {
		tubes[i] = strings.Repeat("t", 200)
	}
	return tubes, nil
}

// TestVersion1LongReply has a version-1 client, which cannot take a
// reply in several frames, ask for a tube list longer than a frame: it
// gets an error reply at once, and the session goes on.
func TestVersion1LongReply(t *testing.T) {
	store, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := NewServer(func() (beanspike.Queue, error) {
		c, err := store.NewClient()
		return bigTubes{c}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mux := memmux.New()
	if err := srv.Listen(mux, DefaultService); err != nil {
		t.Fatal(err)
	}
	cl, err := chanserv.NewClient(mux)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Post(ctx, DefaultService, []byte(magic+"\x01"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	out, err := resp.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h := out.Header(); len(h) < 3 || h[2] != version1 {
		t.Fatalf("hello % x, want version 1", h)
	}
	for id, op := range []byte{opTubes, opStatsTube} {
		msg := binary.AppendUvarint([]byte{op}, uint64(id+1))
		if op == opStatsTube {
			msg = appendString(msg, "t")
		}
		if err := resp.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		p, err := out.Next(ctx)
		if err != nil {
			t.Fatalf("reply to op %d: %v", op, err)
		}
		d := dec{b: p}
		if got, code := d.uvarint(), d.byte(); got != uint64(id+1) {
			t.Fatalf("reply to call %d, want %d", got, id+1)
		} else if op == opTubes && code != codeUnsupported {
			t.Fatalf("Tubes on version 1: code %d (%s), want codeUnsupported", code, d.rest())
		} else if op == opStatsTube && code != codeNotFound {
			t.Fatalf("StatsTube after it: code %d (%s), want codeNotFound", code, d.rest())
		}
	}
}

// FuzzClientReplies answers a client's calls with arbitrary frames (the
// input split at 0xFE 0xFE): the client must never panic, never allocate
// for lengths it did not see arrive, and every call must end, by its
// deadline at the latest.
func FuzzClientReplies(f *testing.F) {
	f.Add(appendHeader(nil, 1, codeOK))
	f.Add(append(framedJob(1, 100_000), append([]byte{0xfe, 0xfe}, make([]byte, 10)...)...))
	f.Add(binary.AppendUvarint(appendHeader(nil, 1, codeLong), 1<<40))
	f.Add(append(binary.AppendUvarint(appendHeader(nil, 1, codeLong), 4), 0xfe, 0xfe, 1, 0, 0, 0))
	f.Add(framedJob(1, 1<<40))
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := bytes.Split(in, []byte{0xfe, 0xfe})
		mux := fakeServer(t, appendHello(nil, version, 1<<20, 1<<20), func(op byte, id uint64) [][]byte {
			return frames
		})
		q := dialFake(t, mux, WithCallTimeout(50*time.Millisecond), WithKeepalive(0))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		before := totalAlloc()
		done := make(chan struct{})
		go func() {
			defer close(done)
			q.Reserve(ctx, "t")
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Reserve did not end by its deadline")
		}
		if d := totalAlloc() - before; d > uint64(64<<20+4*len(in)) {
			t.Fatalf("client allocated %d bytes for %d bytes of replies", d, len(in))
		}
	})
}
