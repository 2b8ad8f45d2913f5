//go:build unix

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The beanstalk port takes beanstalkd's default job size, 65,535 bytes,
// unless -max-body says otherwise, and SIGUSR1 makes it refuse put as
// beanstalkd's drain mode does.
func TestServeBeanstalkDefaults(t *testing.T) {
	_, bsAddr := server(t, "-beanstalk", "127.0.0.1:0")
	nc, err := net.Dial("tcp", bsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	do := func(cmd, want string) {
		t.Helper()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(nc, cmd); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("%q: %q, %v; want %q", cmd, line, err, want)
		}
	}
	do("put 0 0 10 65535\r\n"+strings.Repeat("x", 65535)+"\r\n", "INSERTED")
	do("put 0 0 10 65536\r\n"+strings.Repeat("x", 65536)+"\r\n", "JOB_TOO_BIG")
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, "put 0 0 10 1\r\nx\r\n")
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "DRAINING") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put after SIGUSR1: %q, want DRAINING", line)
		}
		time.Sleep(10 * time.Millisecond)
	}

	_, bsAddr = server(t, "-beanstalk", "127.0.0.1:0", "-max-body", "100000")
	nc2, err := net.Dial("tcp", bsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	nc, r = nc2, bufio.NewReader(nc2)
	do("put 0 0 10 65536\r\n"+strings.Repeat("x", 65536)+"\r\n", "INSERTED")
}
