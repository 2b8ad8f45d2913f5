//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// ownGroup lets cmd be stopped by killing it; without process groups the
// processes it started are not reached.
func ownGroup(cmd *exec.Cmd) {}

// drainSignals is empty where there is no SIGUSR1.
var drainSignals []os.Signal
