package chanserv_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
)

// FuzzClient feeds arbitrary server bytes to a client: it must never
// panic, never hang, and end every response with an error or io.EOF.
func FuzzClient(f *testing.F) {
	pre := []byte("CHSV\x01\x00\x00\x00")
	f.Add(append(append([]byte{}, pre...), 0x16, 0, 1, 0x40, 0x11, 1, 1, 'h', 0x12, 1, 2, 'h', 'i', 0x14, 1, 2, 0, 0, 0x15, 0, 2, 0, 0))
	f.Add(append(append([]byte{}, pre...), 0x11, 1, 0, 0x13, 1, 4, 1, 200, 1, 0, 0x15, 0, 3, 1, 0, 'x'))
	f.Add(append(append([]byte{}, pre...), 0x12, 9, 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, in []byte) {
		mux := memmux.New()
		l, err := mux.Bind("", "svc")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
			c.Write(in)
		}()
		cl, err := chanserv.NewClient(mux, chanserv.WithMaxFrameSize(1024), chanserv.WithWindow(512), chanserv.WithMaxSources(4))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cl.Post(ctx, "svc", []byte("req"))
		if err != nil {
			return
		}
		defer r.Close()
		for src, err := range r.Sources(ctx) {
			if err != nil {
				break
			}
			for p, err := range src.Frames(ctx) {
				if err != nil {
					break
				}
				if len(p) > 1024 {
					t.Fatalf("frame of %d bytes over the limit", len(p))
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatal("client hung on fuzzed input")
		}
	})
}
