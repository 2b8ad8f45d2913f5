package beanstalk

import (
	"strings"
	"testing"
	"time"
)

// The tests named TestIntendedDifference… pin down where the front end
// deliberately differs from beanstalkd: each checks both behaviours, so
// that a change on either side shows.

// runBoth runs a script on beanstalkd and on the front end and returns
// both transcripts.
func runBoth(t *testing.T, script []step, opts ...Option) (beanstalkd, frontEnd []string) {
	t.Helper()
	bd := startBeanstalkd(t)
	_, addr := startFrontEnd(t, opts...)
	return session(t, bd.addr, nil, script), session(t, addr, nil, script)
}

func wantTranscript(t *testing.T, who string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s:\ngot  %q\nwant %q", who, got, want)
	}
}

// Among ready jobs of equal priority, beanstalkd reserves the lowest ID
// first (its heap orders by priority, then ID), so a released job jumps
// ahead of later ones. The beanspike contract reserves the job that became
// ready first, and the front end serves the store's order.
func TestIntendedDifferenceReadyOrder(t *testing.T) {
	script := []step{
		do(0, "put 0 0 10 1\r\na\r\n"),
		do(0, "put 0 0 10 1\r\nb\r\n"),
		do(0, "reserve\r\n"),
		do(0, "release $1 0 0\r\n"),
		do(0, "reserve\r\n"),
	}
	b, f := runBoth(t, script)
	common := []string{"0: INSERTED $1\r\n", "0: INSERTED $2\r\n", "0: RESERVED $1 1\r\na\r\n", "0: RELEASED\r\n"}
	wantTranscript(t, "beanstalkd", b, append(common, "0: RESERVED $1 1\r\na\r\n")...)
	wantTranscript(t, "front end", f, append(common, "0: RESERVED $2 1\r\nb\r\n")...)
}

// beanstalkd deletes a tube once it is empty and no connection uses or
// watches it. The store keeps a tube from its first put until DeleteTube,
// so the front end still lists it and answers stats-tube.
func TestIntendedDifferenceTubesPersist(t *testing.T) {
	script := []step{
		do(1, "use kept\r\n"),
		do(1, "put 0 0 10 1\r\na\r\n"),
		do(1, "delete $1\r\n"),
		hangup(1),
		pause(100 * time.Millisecond),
		do(0, "stats-tube kept\r\n"),
	}
	b, f := runBoth(t, script)
	common := []string{"1: USING kept\r\n", "1: INSERTED $1\r\n", "1: DELETED\r\n"}
	wantTranscript(t, "beanstalkd", b, append(common, "0: NOT_FOUND\r\n")...)
	if len(f) != 4 || !strings.HasPrefix(f[3], "0: OK\r\n---\nname: kept\n") {
		t.Errorf("front end: got %q, want stats of tube kept", f)
	}
}

// The front end answers the delete-tube extension when it is enabled with
// WithDeleteTube; beanstalkd, and the front end by default, do not know
// the command.
func TestIntendedDifferenceDeleteTube(t *testing.T) {
	script := []step{
		do(0, "use doomed\r\n"),
		do(0, "put 0 0 10 1\r\na\r\n"),
		do(0, "put 0 0 10 1\r\nb\r\n"),
		do(0, "delete-tube doomed\r\n"),
		do(0, "peek $1\r\n"),
		do(0, "delete-tube nope\r\n"),
		do(0, "delete-tube -bad\r\n"),
	}
	b, f := runBoth(t, script, WithDeleteTube())
	common := []string{"0: USING doomed\r\n", "0: INSERTED $1\r\n", "0: INSERTED $2\r\n"}
	wantTranscript(t, "beanstalkd", b, append(common, "0: UNKNOWN_COMMAND\r\n", "0: FOUND $1 1\r\na\r\n",
		"0: UNKNOWN_COMMAND\r\n", "0: UNKNOWN_COMMAND\r\n")...)
	wantTranscript(t, "front end", f, append(common, "0: DELETED 2\r\n", "0: NOT_FOUND\r\n",
		"0: NOT_FOUND\r\n", "0: BAD_FORMAT\r\n")...)

	_, addr := startFrontEnd(t)
	wantTranscript(t, "front end without the extension", session(t, addr, nil, script[3:4]), "0: UNKNOWN_COMMAND\r\n")
}
