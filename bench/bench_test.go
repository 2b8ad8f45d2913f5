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

// BenchmarkFootprint measures the memory per job beyond its body of the
// memory backend and of beanstalkd, with 1M jobs of 100 bytes each.
func BenchmarkFootprint(b *testing.B) {
	const jobs, size = 1 << 20, 100
	for _, f := range []func(int, int) (Footprint, error){BeanstalkdFootprint, MemoryFootprint} {
		fp, err := f(jobs, size)
		if errors.Is(err, ErrMissing) {
			b.Logf("skipped: %v", err)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fp.Target, func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(fp.PerJob, "bytes/job")
		})
	}
}

// TestFootprint checks that both footprint measurements run and give a
// plausible figure. Enough jobs are put that the garbage of earlier tests
// cannot hide their memory.
func TestFootprint(t *testing.T) {
	for _, f := range []func(int, int) (Footprint, error){BeanstalkdFootprint, MemoryFootprint} {
		fp, err := f(100_000, 100)
		if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if fp.PerJob <= 0 || fp.PerJob > 4096 {
			t.Errorf("%s: %.1f bytes per job, want between 0 and 4096", fp.Target, fp.PerJob)
		}
	}
}
