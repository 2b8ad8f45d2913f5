package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	t0 := time.Unix(100, 0)
	if held, ok := l.Allow(t0); !ok || held != 0 {
		t.Fatalf("first line: %d, %v", held, ok)
	}
	for i := range 5 {
		if _, ok := l.Allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("line %d within the interval let through", i)
		}
	}
	if held, ok := l.Allow(t0.Add(Interval)); !ok || held != 5 {
		t.Fatalf("line after the interval: held %d, %v; want 5, true", held, ok)
	}
}
