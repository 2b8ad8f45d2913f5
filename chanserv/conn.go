package chanserv

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"

	"github.com/beanspike/beanspike/chanserv/internal/wire"
)

// bufSize is the size of the pooled buffered readers and writers.
const bufSize = 16 << 10

// bufPools recycles the buffered reader and writer of each stream, so that
// a short request allocates neither.
type bufPools struct {
	r sync.Pool // of *bufio.Reader
	w sync.Pool // of *bufio.Writer
}

func (p *bufPools) reader(c net.Conn) *bufio.Reader {
	if br, ok := p.r.Get().(*bufio.Reader); ok {
		br.Reset(c)
		return br
	}
	return bufio.NewReaderSize(c, bufSize)
}

func (p *bufPools) writer(c net.Conn) *bufio.Writer {
	if bw, ok := p.w.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		return bw
	}
	return bufio.NewWriterSize(c, bufSize)
}

func (p *bufPools) put(br *bufio.Reader, bw *bufio.Writer) {
	if br != nil {
		br.Reset(nil)
		p.r.Put(br)
	}
	if bw != nil {
		bw.Reset(nil)
		p.w.Put(bw)
	}
}

// frameWriter serialises frames from many goroutines onto one stream. A
// writer that finds no other writer waiting flushes, so concurrent frames
// are coalesced into few writes and no frame waits for a timer.
type frameWriter struct {
	pending atomic.Int32
	mu      sync.Mutex
	bw      *bufio.Writer
	hdr     [wire.MaxHeaderSize]byte
	err     error
}

// write sends one frame; prefix, if any, goes before the header (the
// preamble). It returns the stream's first write error, which is sticky.
func (w *frameWriter) write(prefix []byte, k wire.Kind, id uint32, p []byte) error {
	w.pending.Add(1)
	w.mu.Lock()
	if w.err == nil {
		if len(prefix) > 0 {
			_, w.err = w.bw.Write(prefix)
		}
		h := wire.AppendHeader(w.hdr[:0], k, id, len(p))
		if _, err := w.bw.Write(h); err != nil && w.err == nil {
			w.err = err
		}
		if _, err := w.bw.Write(p); err != nil && w.err == nil {
			w.err = err
		}
	}
	if w.pending.Add(-1) == 0 && w.err == nil {
		w.err = w.bw.Flush()
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// detach stops the writer: later writes fail with net.ErrClosed. It
// returns the buffered writer for reuse, or nil if already detached.
func (w *frameWriter) detach() *bufio.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	bw := w.bw
	w.bw = nil
	if w.err == nil {
		w.err = net.ErrClosed
	}
	return bw
}

// writeUvarint sends a frame whose payload is one uvarint.
func (w *frameWriter) writeUvarint(k wire.Kind, id uint32, v uint64) error {
	var b [10]byte
	return w.write(nil, k, id, appendUvarint(b[:0], v))
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// signal wakes one waiter on c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
