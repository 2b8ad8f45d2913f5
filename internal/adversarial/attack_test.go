//go:build linux

package adversarial

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
	"github.com/beanspike/beanspike/internal/adversarial/frame"
)

// dial opens a TCP connection to addr that is closed when ctx ends; a
// read or write blocked on it then returns.
func (a *attacker) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &attackConn{Conn: c, stop: context.AfterFunc(ctx, func() { c.Close() }), sent: &a.sent}, nil
}

// attackConn counts what is written to it and is closed with its
// attack's context.
type attackConn struct {
	net.Conn
	stop func() bool
	sent *atomic.Int64
}

func (c *attackConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

func (c *attackConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// workers runs fn on n goroutines and waits for them.
func workers(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

// drain reads and discards what c receives until it fails.
func drain(c net.Conn) {
	io.Copy(io.Discard, c)
}

// garbage returns n bytes from rng.
func garbage(rng *mrand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// mib formats a byte count.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Paces of the attacks. An attack as fast as the test process can go
// would measure how two processors are shared between the server, the
// attacker and the clients, not how the server copes. These paces fill
// within the first second every queue and limit the server keeps for a
// peer (ping replies, streams, accept backlog, buffer budget, socket
// buffers), and leave the server part of the processors; each attack
// logs the processor time the server used, so that a rise in the cost
// of a frame shows.
const (
	// floodRate is the pace of the floods of small frames, in bytes a
	// second: 512 KiB/s is 43,000 yamux headers a second.
	floodRate = 512 << 10
	// bulkRate is the pace of the floods of data: streams filled with
	// data, put bodies, lines that never end.
	bulkRate = 64 << 20
	// cycle is the pause of an attack that hangs up and comes back,
	// between two connections.
	cycle = 100 * time.Millisecond
)

// flood writes next(w, i) for i = 0, 1, ... on conns connections to
// addr (w, from 0, numbers the connection), from a new connection
// whenever the server closes one, until ctx ends, at most rate bytes a
// second in all. first, if set, is written once on each connection
// before the rest. It never reads.
func (a *attacker) flood(ctx context.Context, addr string, conns int, rate int64, first []byte, next func(w, i int) []byte) {
	a.floodAndRead(ctx, addr, conns, 0, rate, first, next)
}

// floodAndRead is flood, on conns connections of which the first
// reading read and discard what the server sends.
func (a *attacker) floodAndRead(ctx context.Context, addr string, conns, reading int, rate int64, first []byte, next func(w, i int) []byte) {
	workers(conns, func(w int) {
		start, sent := time.Now(), int64(0)
		for ctx.Err() == nil {
			c, err := a.dial(ctx, addr)
			if err != nil {
				sleep(ctx, cycle)
				continue
			}
			if w < reading {
				go drain(c)
			}
			if first != nil {
				if _, err := c.Write(first); err != nil {
					c.Close()
					continue
				}
			}
			for i := 0; ctx.Err() == nil; i++ {
				n, err := c.Write(next(w, i))
				if err != nil {
					break
				}
				a.underWay()
				sent += int64(n)
				sleep(ctx, time.Until(start.Add(time.Duration(sent*int64(conns)*int64(time.Second)/rate))))
			}
			c.Close()
		}
	})
}

// cycles runs conn on a new connection to addr from each of n workers,
// again and again, a pause of cycle between two, until ctx ends.
func (a *attacker) cycles(ctx context.Context, addr string, n int, conn func(w int, c net.Conn)) int64 {
	var conns atomic.Int64
	workers(n, func(w int) {
		for ctx.Err() == nil {
			c, err := a.dial(ctx, addr)
			if err == nil {
				conns.Add(1)
				conn(w, c)
				c.Close()
			}
			sleep(ctx, cycle)
		}
	})
	return conns.Load()
}

// remoteAttacks are the attacks on the remote port.
func remoteAttacks() []attack {
	return []attack{
		{name: "ping_flood", run: pingFlood},
		{name: "window_update_flood", run: windowFlood},
		{name: "stream_open_flood", run: openFlood},
		{name: "unknown_service", run: unknownService},
		{name: "garbage", run: remoteGarbage},
		{name: "truncated_frames", run: truncatedFrames},
		{name: "huge_lengths", run: hugeLengths},
		{name: "one_byte_frames", run: oneByteFrames},
		{name: "bad_window_updates", run: badWindowUpdates},
		{name: "connection_flood", run: remoteConnFlood},
		{name: "peek_amplification", run: peekAmplification},
	}
}

// pingFlood sends yamux pings, each asking for a reply, on two
// connections that never read.
func pingFlood(ctx context.Context, a *attacker) (string, error) {
	var b []byte
	for k := range 4096 {
		b = frame.Ping(b, uint32(k))
	}
	a.flood(ctx, a.s.remote, 2, floodRate, nil, func(int, int) []byte { return b })
	return fmt.Sprintf("%d pings", a.sent.Load()/frame.YamuxHeaderSize), nil
}

// windowFlood opens a stream and sends window updates of one byte on it,
// on two connections that never read.
func windowFlood(ctx context.Context, a *attacker) (string, error) {
	var b []byte
	for range 4096 {
		b = frame.Yamux(b, frame.TypeWindow, 0, 1, 1)
	}
	a.flood(ctx, a.s.remote, 2, floodRate, frame.Open(nil, 1), func(int, int) []byte { return b })
	return fmt.Sprintf("%d window updates", a.sent.Load()/frame.YamuxHeaderSize), nil
}

// openFlood opens streams (window updates with SYN) that never name a
// service, on two connections that never read. It goes at half the pace
// of the other floods: a stream refused past the limit costs the server
// about 10 µs of processor (go-yamux formats a log line for each before
// vnet's limiter drops it), so that at the full pace the attack measures
// the machine's two processors more than the server.
func openFlood(ctx context.Context, a *attacker) (string, error) {
	const conns = 2
	bufs := make([][]byte, conns)
	a.flood(ctx, a.s.remote, conns, floodRate/2, nil, func(w, i int) []byte {
		b := bufs[w][:0]
		for k := range 1024 {
			b = frame.Open(b, uint32(1+2*(i*1024+k)))
		}
		bufs[w] = b
		return b
	})
	return fmt.Sprintf("%d streams opened", a.sent.Load()/frame.YamuxHeaderSize), nil
}

// unknownService opens streams to a service nobody serves, each filled
// with its whole initial window of data, on four connections that never
// read.
func unknownService(ctx context.Context, a *attacker) (string, error) {
	payload := make([]byte, frame.YamuxInitialWindow)
	copy(payload, frame.VnetPreamble(nil, "nobody"))
	const conns = 4
	bufs := make([][]byte, conns)
	for w := range bufs {
		bufs[w] = frame.Data(nil, frame.FlagSYN, 1, payload)
	}
	a.flood(ctx, a.s.remote, conns, bulkRate, nil, func(w, i int) []byte {
		binary.BigEndian.PutUint32(bufs[w][4:], uint32(1+2*i))
		return bufs[w]
	})
	return fmt.Sprintf("%d streams of %d KiB", a.sent.Load()/int64(len(payload)+frame.YamuxHeaderSize), len(payload)>>10), nil
}

// remoteGarbage sends random bytes at every layer, on ten connections at
// a time, each hanging up and coming back: raw on the connection; as
// the data of yamux streams; after a vnet preamble; after a chanserv
// preamble; as remote calls in an opened session.
func remoteGarbage(ctx context.Context, a *attacker) (string, error) {
	const n = 10
	bufs := make([][]byte, n)
	for w := range bufs {
		rng := mrand.New(mrand.NewPCG(uint64(w), 1))
		layer := w % 5
		if layer == 0 {
			b := garbage(rng, 64<<10)
			b[0] = byte(1 + rng.IntN(255)) // not yamux's version
			bufs[w] = b
			continue
		}
		for id := uint32(1); id < 40; id += 2 {
			var p []byte
			switch layer {
			case 2:
				p = frame.VnetPreamble(nil, "beanspike")
			case 3:
				p = frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
			case 4:
				p = frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
				p = frame.ChanservRequest(p, frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
				for range 8 {
					p = frame.ChanservMessage(p, garbage(rng, 1+rng.IntN(64)))
				}
			}
			p = append(p, garbage(rng, 512)...)
			bufs[w] = frame.Data(bufs[w], frame.FlagSYN, id, p)
		}
	}
	conns := a.cycles(ctx, a.s.remote, n, func(w int, c net.Conn) {
		go drain(c)
		if _, err := c.Write(bufs[w]); err == nil {
			a.underWay()
		}
		sleep(ctx, cycle)
	})
	return fmt.Sprintf("%d connections, %s", conns, mib(a.sent.Load())), nil
}

// truncated returns the start of a frame cut short, at the layer k
// names, on stream id.
func truncated(k int, id uint32) []byte {
	vnet := frame.VnetPreamble(nil, "beanspike")
	chsv := frame.ChanservPreamble(append([]byte(nil), vnet...))
	session := frame.ChanservRequest(append([]byte(nil), chsv...), frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
	switch k {
	case 0: // a yamux header cut short
		return frame.Open(nil, id)[:7]
	case 1: // a data frame that announces more than it carries
		return append(frame.Yamux(nil, frame.TypeData, frame.FlagSYN, id, 1000), make([]byte, 100)...)
	case 2: // a vnet preamble cut short
		return frame.Data(nil, frame.FlagSYN, id, vnet[:5])
	case 3: // a chanserv preamble cut short
		return frame.Data(nil, frame.FlagSYN, id, chsv[:len(vnet)+3])
	case 4: // a chanserv request that announces 200 bytes and carries 20
		p := frame.ChanservHeader(append([]byte(nil), chsv...), frame.KindRequest, 0, 200)
		return frame.Data(nil, frame.FlagSYN, id, append(p, make([]byte, 20)...))
	default: // a remote call that announces 1,000 bytes and carries 10
		p := frame.ChanservHeader(session, frame.KindMessage, 0, 1000)
		return frame.Data(nil, frame.FlagSYN, id, append(p, make([]byte, 10)...))
	}
}

// truncatedFrames leaves frames cut short at every layer: 32 connections
// each hold a yamux frame cut short, or streams whose vnet, chanserv or
// remote frames are cut short (100 streams a connection), and hold them;
// 8 more connections do the same and hang up at once, again and again.
// Before them, more streams than the server's buffer budget has room for
// come to hold a vnet preamble cut short (see holdPreambles); all along,
// fresh sessions must be served.
func truncatedFrames(ctx context.Context, a *attacker) (string, error) {
	var (
		held, hungUp atomic.Int64
		wg           sync.WaitGroup
		preambles    string
		fresh        freshSessions
	)
	settled := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		preambles = a.holdPreambles(ctx, func() { close(settled) })
	}()
	go func() {
		defer wg.Done()
		fresh.probe(ctx, a)
	}()
	// The server has 5,120 streams to take up (and, if it bounds those
	// awaiting their preamble, 4,096 to reset), which takes it a while;
	// the attack is under way once it has answered them all.
	select {
	case <-settled:
	case <-ctx.Done():
	}
	workers(40, func(w int) {
		hold := w < 32
		for ctx.Err() == nil {
			c, err := a.dial(ctx, a.s.remote)
			if err != nil {
				sleep(ctx, cycle)
				continue
			}
			go drain(c)
			k := w % 6
			var b []byte
			if k <= 1 {
				b = truncated(k, 1)
			} else {
				for id := uint32(1); id < 200; id += 2 {
					b = append(b, truncated(k, id)...)
				}
			}
			_, err = c.Write(b)
			if hold {
				held.Add(1)
				a.underWay()
				<-ctx.Done()
				c.Close()
				return
			}
			if err == nil {
				hungUp.Add(1)
			}
			sleep(ctx, cycle)
			c.Close()
		}
	})
	wg.Wait()
	did := fmt.Sprintf("%d connections held with frames cut short, %d hung up mid-frame; %s; %s",
		held.Load(), hungUp.Load(), preambles, fresh.String())
	return did, fresh.err()
}

// Streams held with a vnet preamble cut short, by holdPreambles: a
// quarter more than the server's buffer budget has room for at a whole
// window each (5,120 with vnet's defaults, a budget of 4 GiB and windows
// of 1 MiB), on as many connections as that takes at the most streams
// vnet lets a peer open on one (20 of 256). A server that counted each
// stream awaiting its preamble at its whole window refused every other
// stream while they were held.
const (
	preambleStreams = vnet.DefaultMaxBuffer / vnet.DefaultWindow * 5 / 4
	preambleConns   = (preambleStreams + vnet.DefaultMaxStreams - 1) / vnet.DefaultMaxStreams
	// preambleRefill is how many streams a connection of holdPreambles
	// opens each cycle, at most, in place of streams the server reset:
	// 2,400 a second on 20 connections.
	preambleRefill = vnet.DefaultMaxStreams / 20
)

// holdPreambles opens preambleStreams streams, each with a vnet
// preamble cut short, on preambleConns connections, and holds them. Once
// the server has answered each (taken it up, or reset it), it calls
// settled; from then on, when the server resets some, it opens as many
// new ones, at most preambleRefill a connection each cycle. It returns
// what it did.
func (a *attacker) holdPreambles(ctx context.Context, settled func()) string {
	var (
		opened, reset atomic.Int64
		answered      sync.WaitGroup
	)
	answered.Add(preambleConns)
	go func() {
		answered.Wait()
		settled()
	}()
	workers(preambleConns, func(int) {
		var once sync.Once
		done := func() { once.Do(answered.Done) }
		defer done()
		c, err := a.dial(ctx, a.s.remote)
		if err != nil {
			return
		}
		defer c.Close()
		var (
			gone    atomic.Int64 // streams the server reset, not yet replaced
			answers atomic.Int64 // streams the server took up or reset
		)
		go func() {
			seen := make(map[uint32]bool)
			readStreams(c, func(id uint32, flags uint16) {
				if flags&(frame.FlagACK|frame.FlagRST) != 0 && !seen[id] {
					seen[id] = true
					answers.Add(1)
				}
				if flags&frame.FlagRST != 0 {
					gone.Add(1)
					reset.Add(1)
				}
			})
		}()
		next := uint32(1)
		open := func(n int) error {
			var b []byte
			for range n {
				b = append(b, truncated(2, next)...)
				next += 2
			}
			_, err := c.Write(b)
			if err == nil {
				opened.Add(int64(n))
			}
			return err
		}
		if open(vnet.DefaultMaxStreams) != nil {
			return
		}
		for ctx.Err() == nil && answers.Load() < vnet.DefaultMaxStreams {
			sleep(ctx, 10*time.Millisecond)
		}
		done()
		for ctx.Err() == nil {
			sleep(ctx, cycle)
			if n := min(gone.Load(), preambleRefill); n > 0 {
				gone.Add(-n)
				if open(int(n)) != nil {
					return
				}
			}
		}
	})
	return fmt.Sprintf("%d streams opened with a vnet preamble cut short on %d connections (%d at once), %d reset by the server",
		opened.Load(), preambleConns, preambleStreams, reset.Load())
}

// readStreams reads yamux frames from c until it fails, and calls f with
// the stream id and flags of each frame on one of the client's streams
// (odd ids).
func readStreams(c net.Conn, f func(id uint32, flags uint16)) {
	br := bufio.NewReader(c)
	var h [frame.YamuxHeaderSize]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		flags := binary.BigEndian.Uint16(h[2:])
		id, n := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if h[1] == frame.TypeData {
			if _, err := br.Discard(int(n)); err != nil {
				return
			}
		}
		if id%2 == 1 {
			f(id, flags)
		}
	}
}

// freshSessions opens fresh sessions on the remote port, one after
// another, while an attack goes on, and counts those served and those
// not.
type freshSessions struct {
	served, failed atomic.Int64
	mu             sync.Mutex
	first          error
}

// probe opens fresh sessions, four cycles apart (each costs the test
// process, where the well-behaved clients run, a vnet node and a TCP
// connection), until ctx ends. It starts warmUp after the attack is
// under way, as the suite's measurement does: streams that go-yamux has
// queued for the server count their whole windows until the server
// takes them up, so the 5,120 that holdPreambles opens at once spend the
// budget until the server has taken them up.
func (f *freshSessions) probe(ctx context.Context, a *attacker) {
	select {
	case <-a.way:
	case <-ctx.Done():
		return
	}
	sleep(ctx, warmUp)
	for ctx.Err() == nil {
		err := servesRemote(ctx, a.s)
		switch {
		case ctx.Err() != nil: // the attack ended during the probe
		case err != nil:
			f.failed.Add(1)
			f.mu.Lock()
			if f.first == nil {
				f.first = err
			}
			f.mu.Unlock()
		default:
			f.served.Add(1)
		}
		sleep(ctx, 4*cycle)
	}
}

// String says how many fresh sessions were served and how many not.
func (f *freshSessions) String() string {
	return fmt.Sprintf("%d fresh sessions served during the attack, %d not", f.served.Load(), f.failed.Load())
}

// err returns an error if a fresh session was not served.
func (f *freshSessions) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == nil {
		return nil
	}
	return fmt.Errorf("%d of %d fresh sessions not served during the attack; the first: %w",
		f.failed.Load(), f.failed.Load()+f.served.Load(), f.first)
}

// hugeLengths declares lengths of 4 GiB and more: a yamux data frame
// (on an open stream, and opening one), a chanserv request, a remote
// call, a tube name inside a call, a token inside a session request.
func hugeLengths(ctx context.Context, a *attacker) (string, error) {
	const huge = 4 << 30
	stream := func(p []byte) []byte { return frame.Data(nil, frame.FlagSYN, 1, p) }
	chsv := frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
	session := frame.ChanservRequest(append([]byte(nil), chsv...), frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
	filler := make([]byte, 32<<10)
	variants := [][]byte{
		// yamux: 4 GiB of data on an open stream; and opening one.
		append(frame.Yamux(frame.Open(nil, 1), frame.TypeData, 0, 1, 1<<32-1), filler...),
		append(frame.Yamux(nil, frame.TypeData, frame.FlagSYN, 1, 1<<32-1), filler...),
		// chanserv: a request of 4 GiB, and of 2^64-1 bytes.
		stream(frame.ChanservHeader(append([]byte(nil), chsv...), frame.KindRequest, 0, huge)),
		stream(frame.ChanservHeader(append([]byte(nil), chsv...), frame.KindRequest, 0, 1<<64-1)),
		// remote: a call of 4 GiB in an open session.
		stream(frame.ChanservHeader(append([]byte(nil), session...), frame.KindMessage, 0, huge)),
		// remote: a put whose tube name claims 4 GiB.
		stream(frame.ChanservMessage(append([]byte(nil), session...), []byte{frame.OpPut, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 'x'})),
		// remote: a session request whose token claims 4 GiB.
		stream(frame.ChanservRequest(append([]byte(nil), chsv...), frame.DefaultRequest(),
			append(frame.Session(nil, 1<<20, ""), 0x80, 0x80, 0x80, 0x80, 0x10, 't'))),
	}
	var n atomic.Int64
	a.cycles(ctx, a.s.remote, 2*len(variants), func(w int, c net.Conn) {
		if _, err := c.Write(variants[w%len(variants)]); err == nil {
			n.Add(1)
			a.underWay()
		}
		// The server should hang up; wait a moment for it.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		drain(c)
	})
	return fmt.Sprintf("%d frames declaring 4 GiB or more", n.Load()), nil
}

// oneByteFrames dribbles requests a byte at a time, many at once: four
// connections each carry 200 streams, each stream a remote session
// request and then put calls, sent one byte per yamux data frame, a
// byte per stream every 50 ms; two more connections send yamux pings one
// TCP byte at a time.
func oneByteFrames(ctx context.Context, a *attacker) (string, error) {
	const streams = 200
	var frames atomic.Int64
	msg := frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
	msg = frame.ChanservRequest(msg, frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
	workers(6, func(w int) {
		c, err := a.dial(ctx, a.s.remote)
		if err != nil {
			return
		}
		defer c.Close()
		go drain(c)
		if w >= 4 {
			ping := frame.Ping(nil, 1)
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := c.Write(ping[i%len(ping) : i%len(ping)+1]); err != nil {
					return
				}
				frames.Add(1)
				sleep(ctx, 2*time.Millisecond)
			}
			return
		}
		// Each stream's bytes: the session, then puts, call ids from 1.
		pos := make([]int, streams)
		bodies := make([][]byte, streams)
		calls := make([]uint64, streams)
		for i := range bodies {
			bodies[i] = msg
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for ctx.Err() == nil {
			buf = buf[:0]
			for i := range streams {
				if pos[i] == len(bodies[i]) {
					calls[i]++
					bodies[i] = frame.ChanservMessage(nil, frame.Put(nil, calls[i], "dribble", []byte("one byte at a time")))
					pos[i] = 0
				}
				flags := uint16(0)
				if pos[i] == 0 && calls[i] == 0 {
					flags = frame.FlagSYN
				}
				buf = frame.Data(buf, flags, uint32(1+2*i), bodies[i][pos[i]:pos[i]+1])
				pos[i]++
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
			frames.Add(streams)
			a.underWay()
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	})
	return fmt.Sprintf("%d one-byte frames", frames.Load()), nil
}

// badWindowUpdates sends window updates that make no sense: to streams
// never opened, to the server's own control stream and to stream 0,
// with deltas that overflow the window, with RST, FIN and ACK flags on
// streams never opened; and, last on each connection, one opening a
// stream with a server's (even) id.
func badWindowUpdates(ctx context.Context, a *attacker) (string, error) {
	const conns = 4
	bufs := make([][]byte, conns)
	for w := range bufs {
		rng := mrand.New(mrand.NewPCG(uint64(w), 2))
		b := frame.Open(nil, 1)
		for k := range 500 {
			id := uint32(3 + 2*rng.IntN(1<<20))
			b = frame.Yamux(b, frame.TypeWindow, 0, 1, 1<<32-1)
			b = frame.Yamux(b, frame.TypeWindow, 0, 2, 1<<32-1)
			b = frame.Yamux(b, frame.TypeWindow, 0, 0, rng.Uint32())
			b = frame.Yamux(b, frame.TypeWindow, 0, id, rng.Uint32())
			b = frame.Yamux(b, frame.TypeWindow, frame.FlagRST, id+2, 0)
			b = frame.Yamux(b, frame.TypeWindow, frame.FlagFIN|frame.FlagACK, id+4, rng.Uint32())
			b = frame.Yamux(b, frame.TypeWindow, frame.FlagACK, uint32(k), 1)
		}
		bufs[w] = frame.Open(b, 4)
	}
	var n atomic.Int64
	a.cycles(ctx, a.s.remote, conns, func(w int, c net.Conn) {
		if _, err := c.Write(bufs[w]); err == nil {
			n.Add(int64(len(bufs[w]) / frame.YamuxHeaderSize))
			a.underWay()
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		drain(c)
	})
	return fmt.Sprintf("%d window updates", n.Load()), nil
}

// connFlood opens n connections to addr, 32 at a time, holds them until
// ctx ends and closes them. It returns how many it opened.
func (a *attacker) connFlood(ctx context.Context, addr string, n int) (int, int) {
	var (
		mu     sync.Mutex
		conns  []net.Conn
		failed atomic.Int64
		next   atomic.Int64
	)
	workers(32, func(int) {
		for next.Add(1) <= int64(n) && ctx.Err() == nil {
			c, err := a.dial(ctx, addr)
			if err != nil {
				failed.Add(1)
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	a.underWay()
	<-ctx.Done()
	for _, c := range conns {
		c.Close()
	}
	return len(conns), int(failed.Load())
}

// remoteConnFlood opens as many connections to the remote port as the
// server serves (vnet's cap, 1,024) and 128 more, if the test process
// may open that many, and holds them.
func remoteConnFlood(ctx context.Context, a *attacker) (string, error) {
	want := 1024 + 128
	n := min(want, fdBudget())
	opened, failed := a.connFlood(ctx, a.s.remote, n)
	did := fmt.Sprintf("%d connections held (%d failed to open), the cap being 1024", opened, failed)
	if n < want {
		did += fmt.Sprintf("; bounded by the test's file descriptors to %d of %d", n, want)
	}
	return did, nil
}

// peekAmplification puts a job of the largest body the server takes,
// then opens sessions that ask to peek at it thousands of times each
// and never read a reply.
func peekAmplification(ctx context.Context, a *attacker) (string, error) {
	return slowPeekers(ctx, a, "")
}

// slowPeekers puts a job of the largest body the server takes (with
// the server's token), then opens 16 sessions (presenting token, which
// may be "") that each ask to peek at it 5,000 times and never read a
// reply, and holds them.
func slowPeekers(ctx context.Context, a *attacker, token string) (string, error) {
	const (
		sessions = 16
		peeks    = 5000
	)
	id, cleanup, err := putBig(ctx, a.s, 1<<20)
	if err != nil {
		return "", err
	}
	defer cleanup()
	p := frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
	p = frame.ChanservRequest(p, frame.DefaultRequest(), frame.Session(nil, 1<<20, token))
	for call := range uint64(peeks) {
		p = frame.ChanservMessage(p, frame.Call(nil, frame.OpPeek, call+1, id))
	}
	var opened atomic.Int64
	workers(2, func(int) {
		c, err := a.dial(ctx, a.s.remote)
		if err != nil {
			return
		}
		defer c.Close()
		var b []byte
		for i := range sessions / 2 {
			b = frame.Data(b, frame.FlagSYN, uint32(1+2*i), p)
		}
		if _, err := c.Write(b); err != nil {
			return
		}
		opened.Add(sessions / 2)
		a.underWay()
		<-ctx.Done()
	})
	return fmt.Sprintf("%d sessions asked for %d peeks each at a job of 1 MiB, reading nothing", opened.Load(), peeks), nil
}

// putBig puts a job of n bytes in the tube "big" through the remote
// port and returns its id, and a function that deletes it.
func putBig(ctx context.Context, s *server, n int) (uint64, func(), error) {
	var opts []remote.Option
	if s.token != "" {
		opts = append(opts, remote.WithToken(s.token))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q, err := remote.DialTCP(cctx, s.remote, opts...)
	if err != nil {
		return 0, nil, fmt.Errorf("put the job to peek at: %w", err)
	}
	id, err := q.Put(cctx, "big", make([]byte, n))
	if err != nil {
		q.Close()
		return 0, nil, fmt.Errorf("put the job to peek at: %w", err)
	}
	return uint64(id), func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Delete(dctx, id)
		q.Close()
	}, nil
}
