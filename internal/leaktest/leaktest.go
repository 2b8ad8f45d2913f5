// Package leaktest checks that goroutines a test started have ended.
package leaktest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// patience is how long the checks wait for goroutines to end.
const patience = 5 * time.Second

// Wait waits until at most n goroutines run. It returns nil then, or,
// if more still run after a few seconds, an error that holds the stack
// of every goroutine. It needs no testing.TB, so TestMain can call it.
func Wait(n int) error {
	var got int
	if poll(func() bool {
		runtime.GC()
		got = runtime.NumGoroutine()
		return got <= n
	}) {
		return nil
	}
	return fmt.Errorf("%d goroutines, want at most %d:\n%s", got, n, stacks())
}

// AtMost fails tb if more than n goroutines still run after a few
// seconds; see Wait.
func AtMost(tb testing.TB, n int) {
	tb.Helper()
	if err := Wait(n); err != nil {
		tb.Fatal(err)
	}
}

// None fails tb, with their stacks, if goroutines whose stack match
// reports true still run after a few seconds.
func None(tb testing.TB, match func(stack string) bool) {
	tb.Helper()
	var left []string
	if !poll(func() bool {
		left = left[:0]
		for _, g := range strings.Split(stacks(), "\n\n") {
			if match(g) {
				left = append(left, g)
			}
		}
		return len(left) == 0
	}) {
		tb.Fatalf("goroutines left running:\n%s", strings.Join(left, "\n\n"))
	}
}

// poll reports whether cond holds within patience, checking it every
// 10ms.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// stacks returns the stacks of all goroutines.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
