package bench

import (
	"errors"
	"os"
	"testing"
)

// BenchmarkCompare runs every workload on every target, target by target
// within each workload so that peers sit side by side in the output.
func BenchmarkCompare(b *testing.B) {
	for _, w := range Workloads() {
		for _, t := range Targets() {
			b.Run(w.Name+"/"+t.Name, func(b *testing.B) { Run(b, t, w) })
		}
	}
}

// TestTargets runs every workload briefly on every target, so that a
// broken target or workload fails the ordinary test run. A missing target
// fails under CI, where everything is installed, and is skipped elsewhere.
func TestTargets(t *testing.T) {
	for _, tg := range Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			s, err := tg.Start()
			if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
				t.Skipf("%s: %v", tg.Name, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, w := range Workloads() {
				n := 40
				if testing.Short() {
					n = 5
				}
				if _, err := w.Measure(s, tg, n, nil); err != nil {
					t.Errorf("%s: %v", w.Name, err)
				}
			}
		})
	}
}
