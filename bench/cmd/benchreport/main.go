// Command benchreport runs the side-by-side comparison of package bench —
// every workload on every target, in one run — and writes the results as
// a markdown table and an SVG chart.
//
// Usage:
//
//	go run ./bench/cmd/benchreport [-o bench/README.md] [-svg bench/chart.svg] [-benchtime 1s] [-run regexp]
//
// The table replaces what stands between the lines "<!-- results -->" and
// "<!-- /results -->" of the markdown file, which is created with just
// those lines if it does not exist.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike/bench"
)

func main() {
	testing.Init()
	out := flag.String("o", "bench/README.md", "markdown file whose results section to rewrite")
	svg := flag.String("svg", "bench/chart.svg", "SVG chart to write")
	benchtime := flag.Duration("benchtime", time.Second, "target time per measurement")
	run := flag.String("run", "", "only workloads whose name matches this regexp")
	footprint := flag.Int("footprint", 1<<20, "jobs for the memory-per-job measurement (0 to skip it)")
	flag.Parse()
	if err := report(*out, *svg, *benchtime, *run, *footprint, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// result is one measurement.
type result struct {
	workload, target string
	jobsPerSec       float64
	nsPerOp          float64
	bytesPerOp       int64
	allocsPerOp      int64
	missing          string
}

func report(out, svg string, benchtime time.Duration, run string, footprintJobs int, log io.Writer) error {
	var filter *regexp.Regexp
	if run != "" {
		var err error
		if filter, err = regexp.Compile(run); err != nil {
			return err
		}
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return err
	}
	var results []result
	targets := bench.Targets()
	var workloads []bench.Workload
	for _, w := range bench.Workloads() {
		if filter == nil || filter.MatchString(w.Name) {
			workloads = append(workloads, w)
		}
	}
	for _, w := range workloads {
		for _, t := range targets {
			r := result{workload: w.Name, target: t.Name}
			s, err := t.Start()
			if errors.Is(err, bench.ErrMissing) {
				r.missing = err.Error()
				results = append(results, r)
				fmt.Fprintf(log, "%-28s %-22s missing: %v\n", w.Name, t.Name, err)
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			s.Close()
			var runErr error
			res := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				bench.Run(b, t, w)
			})
			if res.N == 0 {
				runErr = fmt.Errorf("%s on %s failed", w.Name, t.Name)
				return runErr
			}
			r.jobsPerSec = res.Extra["jobs/s"]
			r.nsPerOp = float64(res.NsPerOp())
			r.bytesPerOp = res.AllocedBytesPerOp()
			r.allocsPerOp = res.AllocsPerOp()
			results = append(results, r)
			fmt.Fprintf(log, "%-28s %-22s %12.0f jobs/s %10.0f ns/op %8d B/op %6d allocs/op\n",
				w.Name, t.Name, r.jobsPerSec, r.nsPerOp, r.bytesPerOp, r.allocsPerOp)
		}
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	table := markdown(results, workloads, names)
	if footprintJobs > 0 {
		fps, err := footprints(footprintJobs, log)
		if err != nil {
			return err
		}
		table += fps
	}
	if err := splice(out, table); err != nil {
		return err
	}
	return os.WriteFile(svg, []byte(chart(results, workloads, names)), 0o644)
}

// markdown renders one row per workload and one column per target, each
// cell holding jobs/s and the ratio to beanstalkd measured in the same run.
func markdown(results []result, workloads []bench.Workload, targets []string) string {
	byKey := map[[2]string]result{}
	for _, r := range results {
		byKey[[2]string{r.workload, r.target}] = r
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, %s. Cells: jobs/s (ratio to beanstalkd in the same run).\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	b.WriteString("| workload |")
	for _, t := range targets {
		b.WriteString(" " + t + " |")
	}
	b.WriteString("\n|---|")
	for range targets {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, w := range workloads {
		base := byKey[[2]string{w.Name, "beanstalkd"}].jobsPerSec
		b.WriteString("| " + w.Name + " |")
		for _, t := range targets {
			r := byKey[[2]string{w.Name, t}]
			switch {
			case r.missing != "":
				b.WriteString(" missing |")
			case base > 0 && t != "beanstalkd":
				fmt.Fprintf(&b, " %s (%.2fx) |", human(r.jobsPerSec), r.jobsPerSec/base)
			default:
				fmt.Fprintf(&b, " %s |", human(r.jobsPerSec))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nAllocations per job (B/op, allocs/op, client and server in one process where both are ours):\n\n| workload | target | B/op | allocs/op |\n|---|---|---:|---:|\n")
	sorted := append([]result(nil), results...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].workload < sorted[j].workload })
	for _, r := range sorted {
		if r.missing == "" {
			fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", r.workload, r.target, r.bytesPerOp, r.allocsPerOp)
		}
	}
	return b.String()
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

const (
	beginMark = "<!-- results -->\n"
	endMark   = "<!-- /results -->\n"
)

// splice replaces the results section of the markdown file at path.
func splice(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark)
	if i < 0 || j < i {
		doc += "\n" + beginMark + endMark
		i, j = strings.Index(doc, beginMark), strings.Index(doc, endMark)
	}
	doc = doc[:i+len(beginMark)] + table + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// footprints measures memory per job on the memory backend and beanstalkd
// and renders them as a table.
func footprints(n int, log io.Writer) (string, error) {
	const size = 100
	var b strings.Builder
	fmt.Fprintf(&b, "\nMemory per job beyond its body, %d jobs of %d bytes:\n\n| target | bytes/job |\n|---|---:|\n", n, size)
	for _, f := range []func(int, int) (bench.Footprint, error){bench.BeanstalkdFootprint, bench.MemoryFootprint} {
		fp, err := f(n, size)
		if errors.Is(err, bench.ErrMissing) {
			fmt.Fprintf(log, "footprint: %v\n", err)
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(log, "footprint %-12s %8.1f bytes/job\n", fp.Target, fp.PerJob)
		fmt.Fprintf(&b, "| %s | %.1f |\n", fp.Target, fp.PerJob)
	}
	return b.String(), nil
}
