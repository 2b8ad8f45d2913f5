//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ownGroup runs cmd in a process group of its own, so that stopping it
// reaches the processes it started, and a terminal's Ctrl-C reaches work
// alone, which then stops it: SIGTERM to the group, SIGKILL after
// killGrace.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		time.AfterFunc(killGrace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		return syscall.Kill(-pid, syscall.SIGTERM)
	}
}

// drainSignals are the signals that put the beanstalk port in drain mode,
// as SIGUSR1 does beanstalkd.
var drainSignals = []os.Signal{syscall.SIGUSR1}
