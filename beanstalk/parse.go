package beanstalk

import (
	"bytes"
	"math"

	"github.com/beanspike/beanspike"
)

// lineMax is the longest command line beanstalkd accepts, CRLF included.
const lineMax = 224

// op names a command of the protocol.
type op uint8

// The commands, in the order beanstalkd matches their prefixes.
const (
	opUnknown op = iota
	opPut
	opPeekJob
	opPeekReady
	opPeekDelayed
	opPeekBuried
	opReserveTimeout
	opReserveJob
	opReserve
	opDelete
	opRelease
	opBury
	opKick
	opKickJob
	opTouch
	opStatsJob
	opStatsTube
	opStats
	opUse
	opWatch
	opIgnore
	opListTubesWatched
	opListTubeUsed
	opListTubes
	opQuit
	opPauseTube
	// opDeleteTube is an extension, known only with WithDeleteTube.
	opDeleteTube
	numOps
)

// prefixes maps each command to the prefix that selects it. A line
// selects the first command, in op order, whose prefix it starts with,
// exactly as beanstalkd does: "reservex" selects reserve (and is then
// rejected for trailing bytes) and "quitx" selects quit.
var prefixes = [numOps]string{
	opPut:              "put ",
	opPeekJob:          "peek ",
	opPeekReady:        "peek-ready",
	opPeekDelayed:      "peek-delayed",
	opPeekBuried:       "peek-buried",
	opReserveTimeout:   "reserve-with-timeout ",
	opReserveJob:       "reserve-job ",
	opReserve:          "reserve",
	opDelete:           "delete ",
	opRelease:          "release ",
	opBury:             "bury ",
	opKick:             "kick ",
	opKickJob:          "kick-job ",
	opTouch:            "touch ",
	opStatsJob:         "stats-job ",
	opStatsTube:        "stats-tube ",
	opStats:            "stats",
	opUse:              "use ",
	opWatch:            "watch ",
	opIgnore:           "ignore ",
	opListTubesWatched: "list-tubes-watched",
	opListTubeUsed:     "list-tube-used",
	opListTubes:        "list-tubes",
	opQuit:             "quit",
	opPauseTube:        "pause-tube",
	opDeleteTube:       "delete-tube ",
}

// Replies that carry no value.
const (
	msgBadFormat      = "BAD_FORMAT\r\n"
	msgUnknownCommand = "UNKNOWN_COMMAND\r\n"
	msgJobTooBig      = "JOB_TOO_BIG\r\n"
	msgExpectedCRLF   = "EXPECTED_CRLF\r\n"
	msgDraining       = "DRAINING\r\n"
	msgOutOfMemory    = "OUT_OF_MEMORY\r\n"
	msgInternalError  = "INTERNAL_ERROR\r\n"
	msgNotFound       = "NOT_FOUND\r\n"
	msgDeadlineSoon   = "DEADLINE_SOON\r\n"
	msgTimedOut       = "TIMED_OUT\r\n"
	msgDeleted        = "DELETED\r\n"
	msgReleased       = "RELEASED\r\n"
	msgBuried         = "BURIED\r\n"
	msgKicked         = "KICKED\r\n"
	msgTouched        = "TOUCHED\r\n"
	msgNotIgnored     = "NOT_IGNORED\r\n"
	msgPaused         = "PAUSED\r\n"
)

// command is one parsed command line.
type command struct {
	op op
	// counted tells whether the command counts in the cmd-* statistics.
	// beanstalkd counts a command once its arguments parse, even when it
	// is then refused (a put whose body is too big).
	counted bool
	// errReply, when not empty, is the reply to send instead of running
	// the command.
	errReply string
	// skip is the number of input bytes to discard before sending
	// errReply: the body of a put that is too big, and its CRLF.
	skip int64

	id    uint64
	pri   uint32
	delay uint32 // seconds
	ttr   uint32 // seconds
	size  uint32 // body bytes of a put
	tube  string
	// timeout is the reserve-with-timeout argument in seconds; negative
	// means no timeout, as in beanstalkd.
	timeout int32
	// bound is the kick argument.
	bound uint32
}

// scanLine finds the end of the command line at the start of buf, with
// beanstalkd's rules: the line ends at the first CR if a LF follows it,
// and must fit in lineMax bytes with its CRLF. It returns the line's
// length including CRLF, or 0 when there is none yet; overflow tells that
// none can come within lineMax bytes, so the line is too long.
func scanLine(buf []byte) (n int, overflow bool) {
	w := buf
	if len(w) > lineMax {
		w = w[:lineMax]
	}
	if len(w) >= 2 {
		if i := bytes.IndexByte(w[:len(w)-1], '\r'); i >= 0 && w[i+1] == '\n' {
			return i + 2, false
		}
	}
	return 0, len(w) == lineMax
}

// parseCommand parses a command line without its CRLF. maxJobSize is the
// largest put body accepted; ext enables the extension commands.
func parseCommand(line []byte, maxJobSize int64, ext bool) command {
	if bytes.IndexByte(line, 0) >= 0 {
		return command{errReply: msgBadFormat}
	}
	c := command{op: which(line, ext)}
	args := string(line[len(prefixes[c.op]):])
	bad := func() command {
		c.counted = false
		c.errReply = msgBadFormat
		return c
	}
	switch c.op {
	case opUnknown:
		c.errReply = msgUnknownCommand
		return c

	case opPut:
		var ok bool
		var v uint64
		rest := args
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok {
			return bad()
		}
		c.pri = uint32(v)
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok {
			return bad()
		}
		c.delay = uint32(v)
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok {
			return bad()
		}
		c.ttr = uint32(v)
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok {
			return bad()
		}
		c.size = uint32(v)
		c.counted = true
		if int64(c.size) > maxJobSize {
			c.errReply = msgJobTooBig
			c.skip = int64(c.size) + 2
			return c
		}
		if rest != "" {
			c.errReply = msgBadFormat // counted, as in beanstalkd
		}
		return c

	case opPeekReady, opPeekDelayed, opPeekBuried, opReserve, opStats,
		opListTubes, opListTubeUsed, opListTubesWatched:
		if args != "" {
			return bad()
		}

	case opPeekJob, opReserveJob, opDelete, opKickJob, opTouch, opStatsJob:
		v, rest, ok := readUint(args, math.MaxUint64)
		if !ok || rest != "" {
			return bad()
		}
		c.id = v

	case opReserveTimeout:
		v, ok := strtol(args)
		if !ok {
			return bad()
		}
		c.timeout = int32(v) // beanstalkd keeps it in a C int

	case opRelease:
		var ok bool
		var v uint64
		rest := args
		if c.id, rest, ok = readUint(rest, math.MaxUint64); !ok {
			return bad()
		}
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok {
			return bad()
		}
		c.pri = uint32(v)
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok || rest != "" {
			return bad()
		}
		c.delay = uint32(v)

	case opBury:
		var ok bool
		var v uint64
		rest := args
		if c.id, rest, ok = readUint(rest, math.MaxUint64); !ok {
			return bad()
		}
		if v, rest, ok = readUint(rest, math.MaxUint32); !ok || rest != "" {
			return bad()
		}
		c.pri = uint32(v)

	case opKick:
		v, ok := strtoul(args)
		if !ok {
			return bad()
		}
		c.bound = uint32(v) // beanstalkd keeps it in a C unsigned int

	case opStatsTube, opUse, opWatch, opIgnore, opDeleteTube:
		if beanspike.ValidateTube(args) != nil {
			return bad()
		}
		c.tube = args

	case opQuit:

	case opPauseTube:
		i := 0
		for i < len(args) && args[i] == ' ' {
			i++
		}
		j := i
		for j < len(args) && beanspike.TubeNameByte(args[j]) {
			j++
		}
		if j == i {
			return bad()
		}
		v, rest, ok := readUint(args[j:], math.MaxUint32)
		if !ok || rest != "" {
			return bad()
		}
		c.delay = uint32(v)
		c.counted = true
		if beanspike.ValidateTube(args[i:j]) != nil {
			c.errReply = msgBadFormat // counted, as in beanstalkd
			return c
		}
		c.tube = args[i:j]
		return c
	}
	c.counted = true
	return c
}

// which selects the command a line starts with.
func which(line []byte, ext bool) op {
	for o := opPut; o < numOps; o++ {
		if o == opDeleteTube && !ext {
			continue
		}
		if bytes.HasPrefix(line, []byte(prefixes[o])) {
			return o
		}
	}
	return opUnknown
}

// readUint reads a decimal integer no larger than max after any spaces,
// as beanstalkd's read_u64 and read_u32: the first byte after the spaces
// must be a digit. It returns the value and the rest of s.
func readUint(s string, max uint64) (uint64, string, bool) {
	for s != "" && s[0] == ' ' {
		s = s[1:]
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, s, false
	}
	var v uint64
	i := 0
	overflow := false
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if overflow || v > max {
		return 0, s, false
	}
	return v, s[i:], true
}

// cSpace reports whether c is white space for C's strtol.
func cSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// scanSigned reads C's optional white space, sign and digits. It returns
// the magnitude, whether it was negative, whether any digit was read, and
// whether the magnitude overflowed limit.
func scanSigned(s string, limit func(neg bool) uint64) (mag uint64, neg, digits, overflow bool) {
	i := 0
	for i < len(s) && cSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	lim := limit(neg)
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits = true
		d := uint64(s[i] - '0')
		if overflow || mag > (lim-d)/10 {
			overflow = true
			continue
		}
		mag = mag*10 + d
	}
	return mag, neg, digits, overflow
}

// strtol emulates C's strtol(s, &end, 10) on a 64-bit system, as
// beanstalkd uses it for reserve-with-timeout: trailing bytes are
// ignored, no digits means 0, and only overflow is an error.
func strtol(s string) (int64, bool) {
	mag, neg, _, overflow := scanSigned(s, func(neg bool) uint64 {
		if neg {
			return 1 << 63
		}
		return math.MaxInt64
	})
	if overflow {
		return 0, false
	}
	if neg {
		return int64(-mag), true // -(1<<63) wraps to itself, as intended
	}
	return int64(mag), true
}

// strtoul emulates C's strtoul(s, &end, 10) on a 64-bit system, as
// beanstalkd uses it for kick: at least one digit is needed, trailing
// bytes are ignored and a minus sign negates modulo 2^64.
func strtoul(s string) (uint64, bool) {
	mag, neg, digits, overflow := scanSigned(s, func(bool) uint64 { return math.MaxUint64 })
	if !digits || overflow {
		return 0, false
	}
	if neg {
		return -mag, true
	}
	return mag, true
}
