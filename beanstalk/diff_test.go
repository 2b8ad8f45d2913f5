package beanstalk

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The differential tests run the same scripted sessions against a real
// beanstalkd and against this front end over the memory backend, and
// compare every reply byte for byte after normalising what legitimately
// differs:
//
//   - job IDs are replaced by their order of first appearance ($1, $2…),
//     and scripts name jobs the same way;
//   - the stats fields that describe the process, not the protocol, are
//     masked: pid, version, rusage-utime, rusage-stime, uptime, the
//     binlog-* fields, id, hostname, os and platform
//     (IntendedDifferenceProcessStats);
//   - list-tubes is compared sorted: beanstalkd lists tubes in creation
//     order, the front end in lexical order
//     (IntendedDifferenceListTubesOrder).
//
// Other intended differences have their own tests below, named
// TestIntendedDifference…. Scripts avoid them otherwise.

// step is one action of a scripted session.
type step struct {
	conn int    // connection number, from 0
	send string // bytes to send; $N is the ID of the N-th job seen
	// replies is the number of replies to read after sending.
	replies int
	// wait bounds each read; defaults to 5s.
	wait time.Duration
	// silent expects no input for this long.
	silent time.Duration
	// eof expects the server to close the connection.
	eof bool
	// hangup closes the connection; halfClose closes its write side.
	hangup, halfClose bool
	sleep             time.Duration
	// sorted compares the replies' YAML lists sorted (list-tubes).
	sorted bool
	// drain puts the server in drain mode.
	drain bool
}

// do sends and reads one reply.
func do(conn int, send string) step { return step{conn: conn, send: send, replies: 1} }

// send sends without reading.
func send(conn int, s string) step { return step{conn: conn, send: s} }

// recv reads one reply, waiting up to wait.
func recv(conn int, wait time.Duration) step { return step{conn: conn, replies: 1, wait: wait} }

func silent(conn int, d time.Duration) step { return step{conn: conn, silent: d} }
func eof(conn int) step                     { return step{conn: conn, eof: true} }
func hangup(conn int) step                  { return step{conn: conn, hangup: true} }
func halfClose(conn int) step               { return step{conn: conn, halfClose: true} }
func pause(d time.Duration) step            { return step{sleep: d} }
func drain() step                           { return step{drain: true} }

// listTubes runs list-tubes, whose order is an intended difference.
func listTubes(conn int) step {
	return step{conn: conn, send: "list-tubes\r\n", replies: 1, sorted: true}
}

var (
	idInReply  = regexp.MustCompile(`^(INSERTED|BURIED|RESERVED|FOUND) (\d+)`)
	idInStats  = regexp.MustCompile(`(?m)^id: (\d+)$`)
	idInScript = regexp.MustCompile(`\$(\d+)`)
	okHeader   = regexp.MustCompile(`^OK (\d+)\r\n`)
	maskedStat = regexp.MustCompile(`(?m)^(pid|version|rusage-utime|rusage-stime|uptime|binlog-[a-z-]+|id|hostname|os|platform): .*$`)
)

// session runs a script against addr and returns the normalised
// transcript: one entry per reply or expectation.
func session(t *testing.T, addr string, setDraining func(), script []step) []string {
	t.Helper()
	conns := map[int]*net.TCPConn{}
	readers := map[int]*bufio.Reader{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	get := func(i int) (*net.TCPConn, *bufio.Reader) {
		if c, ok := conns[i]; ok {
			return c, readers[i]
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.TCPConn)
		readers[i] = bufio.NewReader(c)
		return conns[i], readers[i]
	}
	var ids []string // job IDs in order of first appearance
	labels := map[string]string{}
	label := func(id string) string {
		if l, ok := labels[id]; ok {
			return l
		}
		ids = append(ids, id)
		l := "$" + strconv.Itoa(len(ids))
		labels[id] = l
		return l
	}
	var out []string
	for n, s := range script {
		where := fmt.Sprintf("step %d (conn %d, %q)", n, s.conn, s.send)
		if s.sleep > 0 {
			time.Sleep(s.sleep)
			continue
		}
		if s.drain {
			setDraining()
			continue
		}
		c, r := get(s.conn)
		switch {
		case s.hangup:
			c.Close()
			delete(conns, s.conn)
			delete(readers, s.conn)
			continue
		case s.halfClose:
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			continue
		}
		if s.send != "" {
			msg := idInScript.ReplaceAllStringFunc(s.send, func(m string) string {
				k, _ := strconv.Atoi(m[1:])
				if k < 1 || k > len(ids) {
					t.Fatalf("%s: no job %s yet", where, m)
				}
				return ids[k-1]
			})
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, msg); err != nil {
				t.Fatalf("%s: send: %v", where, err)
			}
		}
		for i := 0; i < s.replies; i++ {
			wait := s.wait
			if wait == 0 {
				wait = 5 * time.Second
			}
			c.SetReadDeadline(time.Now().Add(wait))
			reply, err := readReply(r)
			if err != nil {
				out = append(out, fmt.Sprintf("%d: error after %q: %v", s.conn, reply, errKind(err)))
				continue
			}
			e := fmt.Sprintf("%d: %s", s.conn, normalise(reply, label))
			if s.sorted {
				e = sortedList(e)
			}
			out = append(out, e)
		}
		if s.silent > 0 {
			c.SetReadDeadline(time.Now().Add(s.silent))
			if b, err := r.Peek(1); err == nil {
				out = append(out, fmt.Sprintf("%d: unexpected %q", s.conn, b))
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				out = append(out, fmt.Sprintf("%d: closed while silent: %v", s.conn, errKind(err)))
			} else {
				out = append(out, fmt.Sprintf("%d: (silent)", s.conn))
			}
		}
		if s.eof {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(r)
			out = append(out, fmt.Sprintf("%d: EOF after %q (%v)", s.conn, rest, errKind(err)))
		}
	}
	return out
}

// errKind reduces an error to what both servers should agree on.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	return "error"
}

// normalise replaces job IDs by labels, masks the process fields of stats
// and sorts list-tubes; it recomputes OK's size after masking.
func normalise(reply string, label func(string) string) string {
	if m := idInReply.FindStringSubmatchIndex(reply); m != nil {
		reply = reply[:m[4]] + label(reply[m[4]:m[5]]) + reply[m[5]:]
	}
	h := okHeader.FindStringSubmatch(reply)
	if h == nil {
		return reply
	}
	body := reply[len(h[0]):]
	n, _ := strconv.Atoi(h[1])
	if len(body) != n+2 || !strings.HasSuffix(body, "\r\n") {
		return "BAD FRAMING: " + reply
	}
	body = body[:n]
	switch {
	case strings.Contains(body, "\ncmd-put: "):
		body = maskedStat.ReplaceAllString(body, "$1: *")
	case strings.Contains(body, "\nstate: "):
		body = idInStats.ReplaceAllStringFunc(body, func(m string) string { return "id: " + label(m[4:]) })
		body = regexp.MustCompile(`(?m)^age: \d+$`).ReplaceAllString(body, "age: *")
	}
	return "OK\r\n" + body
}

// sortedList sorts the items of a YAML list reply in a transcript entry.
func sortedList(entry string) string {
	i := strings.Index(entry, "---\n")
	if i < 0 {
		return entry
	}
	items := strings.Split(strings.TrimSuffix(entry[i+4:], "\n"), "\n")
	sort.Strings(items)
	return entry[:i+4] + strings.Join(items, "\n") + "\n"
}

// diffTranscripts reports each line, named what and its index, where
// the front end's transcript got differs from beanstalkd's want.
func diffTranscripts(t *testing.T, what string, want, got []string) {
	t.Helper()
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("%s %d differs:\nbeanstalkd: %q\nfront end:  %q", what, i, w, g)
		}
	}
}

// compare runs script against beanstalkd, started with args, and the
// front end, made with opts, and reports every difference.
func compare(t *testing.T, script []step, args []string, opts ...Option) {
	t.Helper()
	bd := startBeanstalkd(t, args...)
	srv, fAddr := startFrontEnd(t, opts...)
	want := session(t, bd.addr, func() { bd.cmd.Process.Signal(syscall.SIGUSR1) }, script)
	got := session(t, fAddr, func() { srv.SetDraining(true) }, script)
	diffTranscripts(t, "reply", want, got)
	if t.Failed() {
		t.Logf("beanstalkd transcript:\n%s", strings.Join(want, "\n"))
		t.Logf("front end transcript:\n%s", strings.Join(got, "\n"))
	}
}
