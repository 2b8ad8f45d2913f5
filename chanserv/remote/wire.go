package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv"
)

// The session request's body: magic, then version, then, from version 2
// on, the longest frame the client accepts, and, when the client has
// one, its token (length-prefixed). See the package documentation for
// the wire format.
const (
	magic   = "BSPK"
	version = 2
	// version1 sessions get no long replies: a reply that does not fit
	// in one frame fails with an error instead.
	version1 = 1
)

// Ops, client to server.
const (
	opPut         byte = 1  // tube, putOpts, body (rest of the message)
	opPutBatch    byte = 2  // n, then n × (tube, putOpts, bytes body)
	opReserve     byte = 3  // max, flags (flagPoll), n, n × tube
	opReserveJob  byte = 4  // job id
	opDelete      byte = 5  // job id
	opRelease     byte = 6  // job id, priority, delay
	opBury        byte = 7  // job id, priority, reason
	opTouch       byte = 8  // job id
	opKick        byte = 9  // tube, signed n
	opKickJob     byte = 10 // job id
	opPeek        byte = 11 // job id
	opPeekReady   byte = 12 // tube
	opPeekDelayed byte = 13 // tube
	opPeekBuried  byte = 14 // tube
	opStatsJob    byte = 15 // job id
	opStatsTube   byte = 16 // tube
	opTubes       byte = 17 // nothing
	opPauseTube   byte = 18 // tube, duration
	opDeleteTube  byte = 19 // tube
	opCancel      byte = 20 // id of the call to cancel; no reply
	opClose       byte = 21 // nothing: the server closes the session
	opPing        byte = 22 // nothing: an empty reply, to show the server answers
)

// flagPoll makes a reserve a non-blocking poll.
const flagPoll = 1

// Error codes of replies.
const (
	codeOK byte = iota
	codeNotFound
	codeNotReserved
	codeInvalidTube
	codeJobTooBig
	codeInvalidArgument
	codeClosed
	codeUnavailable
	codeCanceled
	codeDeadline
	codeUnsupported
	codeOther
	// codeUnauthorized answers a session request whose token the server
	// does not take, in place of the hello.
	codeUnauthorized
	// codeLong is not an outcome: the reply, whole, follows in frames
	// (version 2).
	codeLong byte = 0xff
)

// inlineMax is the longest body sent in a source's header; longer bodies
// are sent as frames of at most chunkSize bytes.
const (
	inlineMax = 64 << 10
	chunkSize = 64 << 10
)

// Body modes of an encoded job.
const (
	bodyInline byte = 0
	bodyFrames byte = 1
)

var sentinels = [...]struct {
	code byte
	err  error
}{
	{codeNotFound, beanspike.ErrNotFound},
	{codeNotReserved, beanspike.ErrNotReserved},
	{codeInvalidTube, beanspike.ErrInvalidTube},
	{codeJobTooBig, beanspike.ErrJobTooBig},
	{codeInvalidArgument, beanspike.ErrInvalidArgument},
	{codeClosed, beanspike.ErrClosed},
	{codeUnavailable, beanspike.ErrUnavailable},
	{codeCanceled, context.Canceled},
	{codeDeadline, context.DeadlineExceeded},
	{codeUnsupported, errors.ErrUnsupported},
}

// codeOf is the wire code of err.
func codeOf(err error) byte {
	if err == nil {
		return codeOK
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return codeOther
}

// wireError is an error that crossed the wire: the server's text, and
// the sentinel its code names.
type wireError struct {
	sentinel error // nil for codeOther
	msg      string
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.sentinel }

// errOf rebuilds the error of a reply.
func errOf(code byte, msg string) error {
	for _, s := range sentinels {
		if s.code == code {
			return &wireError{sentinel: s.err, msg: msg}
		}
	}
	return &wireError{msg: "remote: " + msg}
}

// errMalformed means a peer sent bytes this version cannot decode.
var errMalformed = errors.New("remote: malformed message")

// dec decodes a message with a sticky error.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail()
		return 0
	}
	return uint32(v)
}

// count decodes a count of items that take at least min bytes each, so
// that a forged count cannot make the decoder allocate more than the
// message's size.
func (d *dec) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *dec) duration() time.Duration { return time.Duration(d.varint()) }

func (d *dec) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) string() string { return string(d.bytes()) }

// rest returns the remaining bytes.
func (d *dec) rest() []byte {
	p := d.b
	d.b = nil
	return p
}

// done reports the decoder's error, or errMalformed if bytes remain.
func (d *dec) done() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errMalformed
	}
	return d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendDuration(b []byte, d time.Duration) []byte {
	return binary.AppendVarint(b, int64(d))
}

// appendPutOptions encodes resolved put options.
func appendPutOptions(b []byte, o beanspike.PutOptions) []byte {
	b = binary.AppendUvarint(b, uint64(o.Priority))
	b = appendDuration(b, o.Delay)
	b = appendDuration(b, o.TTR)
	var f byte
	if o.Compress {
		f = 1
	}
	return append(b, f)
}

// putOptions decodes put options back into the options of a Put.
func (d *dec) putOptions() []beanspike.PutOption {
	pri := d.uint32()
	delay := d.duration()
	ttr := d.duration()
	f := d.byte()
	opts := []beanspike.PutOption{beanspike.WithPriority(pri), beanspike.WithDelay(delay), beanspike.WithTTR(ttr)}
	if f&1 != 0 {
		opts = append(opts, beanspike.WithCompression())
	}
	return opts
}

// appendJob encodes a job's metadata, then its body inline or, when it
// goes in frames, its length.
func appendJob(b []byte, j *beanspike.Job) []byte {
	b = binary.AppendUvarint(b, uint64(j.ID))
	b = appendString(b, j.Tube)
	b = binary.AppendUvarint(b, uint64(j.Priority))
	b = appendDuration(b, j.TTR)
	b = binary.AppendUvarint(b, uint64(j.Reserves))
	if len(j.Body) <= inlineMax {
		b = append(b, bodyInline)
		return appendBytes(b, j.Body)
	}
	b = append(b, bodyFrames)
	return binary.AppendUvarint(b, uint64(len(j.Body)))
}

// job decodes a job. When its body travels in frames, framed is its
// length and Body is nil.
func (d *dec) job() (j *beanspike.Job, framed int) {
	j = &beanspike.Job{}
	j.ID = beanspike.ID(d.uvarint())
	j.Tube = d.string()
	j.Priority = d.uint32()
	j.TTR = d.duration()
	j.Reserves = d.uint32()
	switch d.byte() {
	case bodyInline:
		j.Body = d.bytes()
	case bodyFrames:
		n := d.uvarint()
		if n <= inlineMax || n > 1<<40 {
			d.fail()
		}
		framed = int(n)
	default:
		d.fail()
	}
	return j, framed
}

// appendJobStats encodes a JobStats.
func appendJobStats(b []byte, s *beanspike.JobStats) []byte {
	b = binary.AppendUvarint(b, uint64(s.ID))
	b = appendString(b, s.Tube)
	b = append(b, byte(s.State))
	b = binary.AppendUvarint(b, uint64(s.Priority))
	for _, d := range []time.Duration{s.Age, s.Delay, s.TTR, s.TimeLeft} {
		b = appendDuration(b, d)
	}
	for _, n := range []uint32{s.Reserves, s.Timeouts, s.Releases, s.Buries, s.Kicks} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	b = appendString(b, s.BuryReason)
	b = binary.AppendVarint(b, int64(s.Size))
	b = binary.AppendVarint(b, int64(s.StoredSize))
	var c byte
	if s.Compressed {
		c = 1
	}
	return append(b, c)
}

func (d *dec) jobStats() *beanspike.JobStats {
	s := &beanspike.JobStats{}
	s.ID = beanspike.ID(d.uvarint())
	s.Tube = d.string()
	s.State = beanspike.State(d.byte())
	s.Priority = d.uint32()
	for _, p := range []*time.Duration{&s.Age, &s.Delay, &s.TTR, &s.TimeLeft} {
		*p = d.duration()
	}
	for _, p := range []*uint32{&s.Reserves, &s.Timeouts, &s.Releases, &s.Buries, &s.Kicks} {
		*p = d.uint32()
	}
	s.BuryReason = d.string()
	s.Size = int(d.varint())
	s.StoredSize = int(d.varint())
	s.Compressed = d.byte() != 0
	return s
}

// appendTubeStats encodes a TubeStats.
func appendTubeStats(b []byte, s *beanspike.TubeStats) []byte {
	b = appendString(b, s.Name)
	for _, n := range []int{s.Urgent, s.Ready, s.Reserved, s.Delayed, s.Buried, s.Waiting} {
		b = binary.AppendVarint(b, int64(n))
	}
	for _, n := range []uint64{s.TotalJobs, s.Deletes, s.Pauses, s.Compressed, s.CompressionSkipped} {
		b = binary.AppendUvarint(b, n)
	}
	b = appendDuration(b, s.Pause)
	return appendDuration(b, s.PauseLeft)
}

func (d *dec) tubeStats() *beanspike.TubeStats {
	s := &beanspike.TubeStats{}
	s.Name = d.string()
	for _, p := range []*int{&s.Urgent, &s.Ready, &s.Reserved, &s.Delayed, &s.Buried, &s.Waiting} {
		*p = int(d.varint())
	}
	for _, p := range []*uint64{&s.TotalJobs, &s.Deletes, &s.Pauses, &s.Compressed, &s.CompressionSkipped} {
		*p = d.uvarint()
	}
	s.Pause = d.duration()
	s.PauseLeft = d.duration()
	return s
}

// appendHeader starts a reply header.
func appendHeader(b []byte, id uint64, code byte) []byte {
	b = binary.AppendUvarint(b, id)
	return append(b, code)
}

// maxErrorText is the longest error text a reply carries; the rest is
// cut.
const maxErrorText = 4 << 10

// appendErrorReply is the header of a failed call.
func appendErrorReply(b []byte, id uint64, err error) []byte {
	b = appendHeader(b, id, codeOf(err))
	return append(b, errorText(err)...)
}

// errorText is err's text as a reply carries it.
func errorText(err error) string {
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText] + "…"
	}
	return msg
}

// appendHello is the hello header: version, the server's largest message
// and the store's largest body (0 if unknown).
func appendHello(b []byte, v byte, maxMsg, maxBody int) []byte {
	b = appendHeader(b, 0, codeOK)
	b = append(b, v)
	b = binary.AppendUvarint(b, uint64(maxMsg))
	return binary.AppendUvarint(b, uint64(maxBody))
}

// appendSession is a session request's body.
func appendSession(b []byte, maxFrame int, token string) []byte {
	b = append(b, magic...)
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(maxFrame))
	if token != "" {
		b = binary.AppendUvarint(b, uint64(len(token)))
		b = append(b, token...)
	}
	return b
}

// maxToken bounds a session request's token.
const maxToken = 4 << 10

// checkSession validates a session request's body and returns its
// version and the longest frame the client accepts (for version 1, the
// transport's default, which such clients used).
func checkSession(body []byte) (v byte, maxFrame int, token string, err error) {
	if len(body) < len(magic)+1 || string(body[:len(magic)]) != magic {
		return 0, 0, "", fmt.Errorf("%w: not a beanspike session", errMalformed)
	}
	d := dec{b: body[len(magic):]}
	switch v = d.byte(); v {
	case version1:
		maxFrame = chanserv.DefaultMaxFrameSize
	case version:
		n := d.uvarint()
		if n < 1<<10 || n > 1<<31-1 {
			d.fail()
		}
		maxFrame = int(n)
		if len(d.b) > 0 {
			n := d.uvarint()
			if n < 1 || n > maxToken || n > uint64(len(d.b)) {
				d.fail()
			} else {
				token, d.b = string(d.b[:n]), d.b[n:]
			}
		}
	default:
		return 0, 0, "", fmt.Errorf("%w: version %d, want %d or %d", errMalformed, v, version1, version)
	}
	if err := d.done(); err != nil {
		return 0, 0, "", fmt.Errorf("%w: bad session request", errMalformed)
	}
	return v, maxFrame, token, nil
}
