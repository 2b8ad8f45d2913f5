//go:build !linux

package adversarial

import "testing"

// TestServeUnderAttack needs Linux: it reads the server's memory from
// /proc and sets its file descriptor limit with prlimit.
func TestServeUnderAttack(t *testing.T) {
	t.Skip("the adversarial suite runs on Linux only: it reads the server's RSS from /proc/<pid>/status")
}
