package chanserv

import (
	"bufio"
	"encoding/binary"
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

// outbox queues a client's frames for a goroutine of its own that
// writes them, so that no caller waits on the stream: a multiplexer whose
// writes block (a peer that stopped reading, a write that ignores its
// deadline) delays the frames, never the caller. The goroutine starts
// with the first frame queued after the request is written, coalesces
// what is queued meanwhile into one write, and ends when the outbox is
// closed. Queued bytes are bounded by the message credit and the small
// size of the other frames.
type outbox struct {
	conn net.Conn

	mu      sync.Mutex
	buf     []byte // queued frames
	spare   []byte // buf's other half, being written or free
	err     error  // sticky: the first write error, or net.ErrClosed
	isReady bool   // the request was written: frames may follow
	wake    chan struct{}
}

// put queues a frame whose payload is a followed by p. It returns the
// outbox's error if a write failed or the outbox was closed.
func (o *outbox) put(k wire.Kind, id uint32, a, p []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	o.buf = wire.AppendHeader(o.buf, k, id, len(a)+len(p))
	o.buf = append(o.buf, a...)
	o.buf = append(o.buf, p...)
	o.kick()
	return nil
}

// putUvarint queues a frame whose payload is one uvarint.
func (o *outbox) putUvarint(k wire.Kind, id uint32, v uint64) error {
	var b [binary.MaxVarintLen64]byte
	return o.put(k, id, appendUvarint(b[:0], v), nil)
}

// ready lets the queued frames go: the request was written.
func (o *outbox) ready() {
	o.mu.Lock()
	o.isReady = true
	o.kick()
	o.mu.Unlock()
}

// kick wakes the writer, starting it if need be. o.mu must be held.
func (o *outbox) kick() {
	if o.err != nil || !o.isReady || len(o.buf) == 0 {
		return
	}
	if o.wake == nil {
		o.wake = make(chan struct{}, 1)
		go o.run(o.wake)
	}
	signal(o.wake)
}

func (o *outbox) run(wake chan struct{}) {
	for range wake {
		for {
			o.mu.Lock()
			if o.err != nil || len(o.buf) == 0 {
				o.mu.Unlock()
				break
			}
			b := o.buf
			o.buf = o.spare[:0]
			o.spare = nil
			o.mu.Unlock()
			_, err := o.conn.Write(b)
			o.mu.Lock()
			if err != nil && o.err == nil {
				o.err = err
			}
			if cap(b) <= 64<<10 {
				o.spare = b[:0]
			}
			o.mu.Unlock()
		}
	}
}

// close drops the queued frames and ends the writer, once its write in
// progress, if any, returns. Later puts return net.ErrClosed.
func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = net.ErrClosed
	}
	o.buf = nil
	if o.wake != nil {
		close(o.wake)
		o.wake = nil
	}
}

// frameWriter serialises frames from many goroutines onto one stream. A
// writer that finds no other writer waiting flushes, so concurrent frames
// are coalesced into few writes and no frame waits for a timer. Headers
// and small payloads are built in the buffered writer's free space or in
// scratch, so that writing a frame allocates nothing.
//
// A server's writer flushes from a goroutine of its own instead (see
// serverConn.flushLoop), woken when a write leaves data buffered and no
// flush is pending: the frames a handler writes in a burst, such as a
// source, its frames, its end and the response's end, go out in one
// write, and none waits for more than that goroutine to be scheduled.
// The goroutine is started by the first flush and lives as long as the
// writer, so that a long request does not pay for a new goroutine (and
// its stack growth) per burst.
type frameWriter struct {
	pending   atomic.Int32
	mu        sync.Mutex
	bw        *bufio.Writer
	err       error
	later     *serverConn   // if not nil, flushes are left to later.flushLoop
	flushing  bool          // a flush is pending
	flushWake chan struct{} // wakes later.flushLoop; made when it starts
	scratch   [64]byte      // for small payloads; guarded by mu
}

// write sends one frame. It returns the stream's first write error, which
// is sticky.
func (w *frameWriter) write(k wire.Kind, id uint32, p []byte) error {
	w.lock()
	w.emit(false, k, id, nil, p)
	return w.unlock()
}

// writeUvarint sends a frame whose payload is one uvarint, after the
// preamble if pre.
func (w *frameWriter) writeUvarint(pre bool, k wire.Kind, id uint32, v uint64) error {
	w.lock()
	w.emit(pre, k, id, appendUvarint(w.scratch[:0], v), nil)
	return w.unlock()
}

// writeStatus sends an END or END_SOURCE frame with the status of err,
// after the preamble if pre.
func (w *frameWriter) writeStatus(pre bool, k wire.Kind, id uint32, err error) error {
	st, code, msg := statusOf(err)
	w.lock()
	w.emit(pre, k, id, wire.AppendStatus(w.scratch[:0], st, code, msg), nil)
	return w.unlock()
}

func (w *frameWriter) lock() {
	w.pending.Add(1)
	w.mu.Lock()
}

// unlock flushes unless another writer waits, releases the writer and
// returns the sticky error.
func (w *frameWriter) unlock() error {
	if w.pending.Add(-1) == 0 && w.err == nil && w.bw.Buffered() > 0 {
		if w.later == nil {
			w.err = w.bw.Flush()
		} else if !w.flushing {
			w.flushing = true
			if w.flushWake == nil {
				w.flushWake = make(chan struct{}, 1)
				w.later.flusher.Add(1)
				go w.later.flushLoop(w.flushWake)
			}
			signal(w.flushWake)
		}
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// flush writes out the buffered frames now.
func (w *frameWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.bw.Buffered() > 0 {
		w.err = w.bw.Flush()
	}
	return w.err
}

// emit buffers [preamble] header a p, where the payload is a followed by
// p. w.mu must be held.
func (w *frameWriter) emit(pre bool, k wire.Kind, id uint32, a, p []byte) {
	if w.err != nil {
		return
	}
	if w.bw.Available() < wire.PreambleSize+wire.MaxHeaderSize+len(a) {
		if w.err = w.bw.Flush(); w.err != nil {
			return
		}
	}
	b := w.bw.AvailableBuffer()
	if pre {
		b = wire.AppendPreamble(b)
	}
	b = wire.AppendHeader(b, k, id, len(a)+len(p))
	b = append(b, a...)
	if _, w.err = w.bw.Write(b); w.err == nil && len(p) > 0 {
		_, w.err = w.bw.Write(p)
	}
}

// detach stops the writer: later writes fail with net.ErrClosed, and the
// flushing goroutine, if any, is told to end. It returns the buffered
// writer for reuse, or nil if already detached.
func (w *frameWriter) detach() *bufio.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	bw := w.bw
	w.bw = nil
	if w.err == nil {
		w.err = net.ErrClosed
	}
	if w.flushWake != nil {
		close(w.flushWake)
		w.flushWake = nil
	}
	return bw
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

// idMap maps source ids to values. The first few entries are kept inline,
// so that a request with few sources open at once allocates no map.
type idMap[V any] struct {
	n    int // inline entries in use, packed at the front
	ids  [4]uint32
	vals [4]V
	m    map[uint32]V
}

func (t *idMap[V]) get(id uint32) (V, bool) {
	for i := range t.n {
		if t.ids[i] == id {
			return t.vals[i], true
		}
	}
	v, ok := t.m[id]
	return v, ok
}

// set adds id, which must not be present.
func (t *idMap[V]) set(id uint32, v V) {
	if t.n < len(t.ids) {
		t.ids[t.n], t.vals[t.n] = id, v
		t.n++
		return
	}
	if t.m == nil {
		t.m = make(map[uint32]V)
	}
	t.m[id] = v
}

func (t *idMap[V]) del(id uint32) {
	for i := range t.n {
		if t.ids[i] == id {
			t.n--
			t.ids[i], t.vals[i] = t.ids[t.n], t.vals[t.n]
			var zero V
			t.vals[t.n] = zero
			return
		}
	}
	delete(t.m, id)
}

func (t *idMap[V]) len() int { return t.n + len(t.m) }

// values appends the values to dst.
func (t *idMap[V]) values(dst []V) []V {
	dst = append(dst, t.vals[:t.n]...)
	for _, v := range t.m {
		dst = append(dst, v)
	}
	return dst
}
