//go:build !unix

package chanserv_test

import "time"

// cpuTime reports that CPU time is not measured on this platform.
func cpuTime() (time.Duration, bool) { return 0, false }
