package main

import (
	"strings"
	"testing"
	"time"
)

// sample is the shape of go test -v output of BenchmarkBacklog: one
// backlog measured, one refused, one skipped.
const sample = `goos: linux
BenchmarkBacklog
BenchmarkBacklog/backlog=0
    main_test.go:122: aerospike target: real server at 127.0.0.1:3400
    scaling_bench_test.go:125: real server at 127.0.0.1:3400, max-record-size 1048576 (1 MiB), 8 shards per tube
    scaling_bench_test.go:133: backlog of 0 jobs put in 0s
BenchmarkBacklog/backlog=0/RawPut
BenchmarkBacklog/backlog=0/RawPut-2  	   26923	     43230 ns/op	         0 cas-lost/op	         1.002 srv-ops/op	     696 B/op	      13 allocs/op
BenchmarkBacklog/backlog=0/Put
    scaling_bench_test.go:525: client_write_success: 1.99/op
BenchmarkBacklog/backlog=0/Put-2     	    9963	    104215 ns/op	         0 cas-lost/op	         2.1 srv-ops/op	         2.411 x-rawput	    3374 B/op	      54 allocs/op
BenchmarkBacklog/backlog=0/ReserveDelete-2         	   12144	    108308 ns/op	         0 cas-lost/op	         6.355 srv-ops/op	         2.505 x-rawput	    7701 B/op	     104 allocs/op
BenchmarkBacklog/backlog=0/RawPut8-2               	   86727	     13202 ns/op	     75743 ops/s	     697 B/op	      13 allocs/op
BenchmarkBacklog/backlog=0/Concurrent-2            	    4612	    300606 ns/op	         0.01 cas-lost/op	      3327 jobs/s	         7.630 srv-ops/op	         8.978 x-rawput8	   17406 B/op	     257 allocs/op
BenchmarkBacklog/backlog=1M
    scaling_bench_test.go:125: real server at 127.0.0.1:3400, max-record-size 1048576 (1 MiB), 8 shards per tube
    scaling_bench_test.go:129: backlog of 1000000 jobs on real server at 127.0.0.1:3400, max-record-size 1048576 (1 MiB), 8 shards per tube, after 7.1s: the store refused a job after 173792 were put: index record full
    scaling_bench_test.go:246: DeleteTube: 173792 jobs in 792ms
--- FAIL: BenchmarkBacklog/backlog=1M
BenchmarkBacklog/backlog=10M
    scaling_bench_test.go:114: backlog 10000000 is over BEANSPIKE_BACKLOG_MAX=1000000
--- SKIP: BenchmarkBacklog/backlog=10M
--- FAIL: BenchmarkBacklog
FAIL
`

func TestParse(t *testing.T) {
	r := parse(sample)
	if got := strings.Join(r.backlogs, ","); got != "0,1M" {
		t.Errorf("backlogs %q, want 0,1M", got)
	}
	if r.where != "real server at 127.0.0.1:3400, max-record-size 1048576 (1 MiB), 8 shards per tube" {
		t.Errorf("where %q", r.where)
	}
	if d, ok := r.fill["0"]; !ok || d != 0 {
		t.Errorf("fill of 0: %v %v", d, ok)
	}
	for _, c := range []struct {
		op, unit string
		want     float64
	}{
		{"RawPut", "ns/op", 43230},
		{"Put", "x-rawput", 2.411},
		{"ReserveDelete", "srv-ops/op", 6.355},
		{"RawPut8", "ops/s", 75743},
		{"Concurrent", "jobs/s", 3327},
		{"Concurrent", "x-rawput8", 8.978},
	} {
		if got := r.metrics["0"][c.op][c.unit]; got != c.want {
			t.Errorf("%s %s = %v, want %v", c.op, c.unit, got, c.want)
		}
	}
	if got, want := r.refused["1M"], (refusal{put: 173792, after: 7100 * time.Millisecond, err: "index record full"}); got != want {
		t.Errorf("refused 1M: %+v, want %+v", got, want)
	}
	if _, ok := r.metrics["1M"]; ok {
		t.Error("metrics for the refused backlog")
	}
}

func TestReport(t *testing.T) {
	other := strings.Replace(sample, "43230 ns/op", "51000 ns/op", 1)
	other = strings.Replace(other, "put in 0s", "put in 1.5s", 1)
	other = strings.Replace(other, "after 7.1s: the store refused a job after 173792", "after 6.9s: the store refused a job after 173514", 1)
	var b strings.Builder
	if err := report(&b, []string{sample, other}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| 0 | 0–1.50 s | 43.2–51.0 µs | 104 µs | 108 µs | 3327 | 75.7k | 2.41 | 2.50 | 8.98 |",
		"| 1M | refused in 2 of 2 runs after 173514–173792 jobs, 6.90–7.10 s into the fill: index record full |",
		"| 0 | 2.10 | 6.36 | 7.63 | 0.0100 |",
		"Target: real server at 127.0.0.1:3400, max-record-size 1048576 (1 MiB), 8 shards per tube.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if err := report(&b, []string{"goos: linux\nPASS\n"}); err == nil {
		t.Error("report of an output without results: no error")
	}
}

func TestSpan(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   string
	}{
		{1, 1, "1.00"},
		{0.5, 12.345, "0.500–12.3"},
		{1234, 98765, "1234–98765"},
	} {
		if got := spanOf(c.lo, c.hi); got != c.want {
			t.Errorf("spanOf(%v, %v) = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
	if got := durRange(6.5e6, 7.25e6); got != "6.50–7.25 ms" {
		t.Errorf("durRange = %q", got)
	}
}
