//go:build linux

package adversarial

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/internal/adversarial/frame"
)

// tokenAttacks are the attacks on a server that requires a token.
func tokenAttacks() []attack {
	return []attack{
		{name: "no_token", run: noToken, check: nothingStored},
		{name: "peek_amplification_no_token", run: func(ctx context.Context, a *attacker) (string, error) {
			return slowPeekers(ctx, a, "")
		}},
	}
}

// attackerTube is the tube the attacks without a token put to.
const attackerTube = "attacker"

// noToken tries to be served without the token: remote clients that
// give none or a wrong one, again and again, and crafted sessions that
// give none and make calls all the same (put, peek, delete), reading
// what comes back. Anything served is a failure.
func noToken(ctx context.Context, a *attacker) (string, error) {
	var tries, served atomic.Int64
	var firstServed atomic.Value
	serve := func(what string) {
		served.Add(1)
		firstServed.CompareAndSwap(nil, what)
	}
	workers(8, func(w int) {
		for ; ctx.Err() == nil; sleep(ctx, cycle) {
			switch w % 4 {
			case 0, 1:
				var opts []remote.Option
				if w%4 == 1 {
					opts = append(opts, remote.WithToken("not-the-token"))
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				q, err := remote.DialTCP(cctx, a.s.remote, opts...)
				cancel()
				tries.Add(1)
				a.underWay()
				if err == nil {
					serve("a remote client without the token opened a session")
					q.Close()
				} else if ctx.Err() == nil && !errors.Is(err, remote.ErrUnauthorized) {
					serve(fmt.Sprintf("a remote client without the token got %v, not ErrUnauthorized", err))
				}
			default:
				what, err := craftedNoToken(ctx, a)
				tries.Add(1)
				a.underWay()
				if err != nil && ctx.Err() == nil {
					serve(err.Error())
				} else if what != "" {
					serve(what)
				}
			}
		}
	})
	did := fmt.Sprintf("%d sessions tried without the token", tries.Load())
	if n := served.Load(); n > 0 {
		return did, fmt.Errorf("%d of them served; first: %v", n, firstServed.Load())
	}
	return did, nil
}

// craftedNoToken opens a session without a token on a crafted stream,
// puts, peeks and deletes all the same, and reads what the server sends
// until it ends the stream. It returns what was served, if anything.
func craftedNoToken(ctx context.Context, a *attacker) (string, error) {
	c, err := a.dial(ctx, a.s.remote)
	if err != nil {
		return "", nil
	}
	defer c.Close()
	p := frame.ChanservPreamble(frame.VnetPreamble(nil, "beanspike"))
	p = frame.ChanservRequest(p, frame.DefaultRequest(), frame.Session(nil, 1<<20, ""))
	p = frame.ChanservMessage(p, frame.Put(nil, 1, attackerTube, []byte("sneaked in")))
	p = frame.ChanservMessage(p, frame.Call(nil, frame.OpPeek, 2, 1))
	p = frame.ChanservMessage(p, frame.Call(nil, frame.OpDelete, 3, 1))
	if _, err := c.Write(frame.Data(nil, frame.FlagSYN, 1, p)); err != nil {
		return "", nil
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return readStream1(c)
}

// readStream1 reads the yamux frames of a raw connection, and the
// chanserv frames the server sends on stream 1, until the stream or the
// connection ends. It returns what was served: a session's hello, or
// any reply.
func readStream1(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	pr, pw := io.Pipe()
	defer pw.Close()
	result := make(chan string, 1)
	go func() {
		result <- servedOn(pr)
		io.Copy(io.Discard, pr)
	}()
	var h [frame.YamuxHeaderSize]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			break
		}
		typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
		id, n := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if typ != frame.TypeData {
			if typ == frame.TypeWindow && id == 1 && flags&(frame.FlagFIN|frame.FlagRST) != 0 {
				break
			}
			continue
		}
		if id != 1 {
			if _, err := br.Discard(int(n)); err != nil {
				break
			}
			continue
		}
		if _, err := io.CopyN(pw, br, int64(n)); err != nil {
			break
		}
		if flags&(frame.FlagFIN|frame.FlagRST) != 0 {
			break
		}
	}
	pw.Close()
	return <-result, nil
}

// servedOn reads a vnet stream's bytes from the acceptor: its status
// byte, the chanserv preamble and frames. It returns what was served.
func servedOn(r io.Reader) string {
	br := bufio.NewReader(r)
	if _, err := br.Discard(1 + 8); err != nil { // vnet status, chanserv preamble
		return ""
	}
	for {
		kind, err := br.ReadByte()
		if err != nil {
			return ""
		}
		if _, err := binary.ReadUvarint(br); err != nil {
			return ""
		}
		n, err := binary.ReadUvarint(br)
		if err != nil || n > 1<<20 {
			return ""
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return ""
		}
		switch kind {
		case 0x11: // SOURCE: its header is the hello, or the refusal
			if len(p) < 2 || p[0] != 0 || p[1] != 12 { // call 0, codeUnauthorized
				return fmt.Sprintf("a crafted session without the token got the header % x, not a refusal", p)
			}
		case 0x12, 0x13: // DATA: a reply
			return fmt.Sprintf("a crafted session without the token got a reply: % x", p[:min(len(p), 32)])
		}
	}
}

// nothingStored checks that the attacks without a token stored
// nothing.
func nothingStored(ctx context.Context, s *server) error {
	q, err := remote.DialTCP(ctx, s.remote, remote.WithToken(s.token))
	if err != nil {
		return err
	}
	defer q.Close()
	tubes, err := q.Tubes(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(tubes, attackerTube) {
		return fmt.Errorf("the tube %q exists: an attacker without the token put to it", attackerTube)
	}
	return nil
}
