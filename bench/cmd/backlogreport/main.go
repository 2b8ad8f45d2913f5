// Command backlogreport runs BenchmarkBacklog of the Aerospike backend a
// few times against a real server and prints, as markdown, what each
// operation costs against the backlog of its tube: per backlog, the range
// over the runs of every figure, ratios taken within each run.
//
// Usage, from the module's root, with the server in AEROSPIKE_HOST and
// AEROSPIKE_PORT:
//
//	go run ./bench/cmd/backlogreport [-runs 3] [-benchtime 1s] [-max 1000000] [-segment 2000] [-save dir]
//	go run ./bench/cmd/backlogreport file...   # the tables of saved outputs of go test -v
//
// -max sets BEANSPIKE_BACKLOG_MAX (10000000 adds the 10M backlog);
// -segment sets the hints per index segment (-bench.segment); -save keeps
// each run's output. A backlog the store refused is reported with the
// number of jobs it took and the error.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const pkg = "github.com/beanspike/beanspike/backend/aerospike"

func main() {
	runs := flag.Int("runs", 3, "how many times to run the benchmark")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	maxBacklog := flag.String("max", "", "largest backlog (BEANSPIKE_BACKLOG_MAX); empty for the benchmark's default")
	segment := flag.Int("segment", 0, "hints per index segment (-bench.segment); 0 for the backend's default")
	save := flag.String("save", "", "directory to keep each run's output in")
	flag.Parse()
	var outs []string
	var err error
	if flag.NArg() > 0 {
		outs, err = readFiles(flag.Args())
	} else {
		outs, err = runBenchmarks(*runs, *benchtime, *maxBacklog, *segment, *save)
	}
	if err == nil {
		err = report(os.Stdout, outs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "backlogreport:", err)
		os.Exit(1)
	}
}

func readFiles(names []string) ([]string, error) {
	var outs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		outs = append(outs, string(b))
	}
	return outs, nil
}

// runBenchmarks runs the benchmark n times, its output going to stderr as
// it comes, and returns the outputs.
func runBenchmarks(n int, benchtime, maxBacklog string, segment int, save string) ([]string, error) {
	if os.Getenv("AEROSPIKE_HOST") == "" {
		return nil, errors.New("AEROSPIKE_HOST is not set: the figures are meant for a real server")
	}
	if n < 1 {
		return nil, fmt.Errorf("-runs %d: want at least 1", n)
	}
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkBacklog$", "-benchmem", "-v",
		"-benchtime", benchtime, "-timeout", "3h", pkg}
	if segment > 0 {
		args = append(args, "-args", "-bench.segment="+strconv.Itoa(segment))
	}
	env := os.Environ()
	if maxBacklog != "" {
		env = append(env, "BEANSPIKE_BACKLOG_MAX="+maxBacklog)
	}
	var outs []string
	for i := range n {
		fmt.Fprintf(os.Stderr, "run %d of %d: go %s\n", i+1, n, strings.Join(args, " "))
		var buf bytes.Buffer
		cmd := exec.Command("go", args...)
		cmd.Env = env
		cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
		cmd.Stderr = os.Stderr
		err := cmd.Run()
		out := buf.String()
		if save != "" {
			if werr := os.WriteFile(filepath.Join(save, fmt.Sprintf("backlog-run%d.txt", i+1)), buf.Bytes(), 0o644); werr != nil {
				return nil, werr
			}
		}
		// A refused backlog fails the benchmark, and go test with it: the
		// output says so, and the table shows it.
		if err != nil && len(parse(out).backlogs) == 0 {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// run is what one output of the benchmark says.
type run struct {
	where    string                                   // the server, as the benchmark logged it
	backlogs []string                                 // names, in order
	fill     map[string]time.Duration                 // time to put each backlog
	metrics  map[string]map[string]map[string]float64 // backlog, operation, unit
	refused  map[string]refusal                       // backlogs the store refused
}

// refusal is a backlog the store refused.
type refusal struct {
	put   int           // jobs put before the refusal; -1 if not said
	after time.Duration // time from the start of the fill
	err   string
}

var (
	resultLine  = regexp.MustCompile(`^BenchmarkBacklog/backlog=([^/\s]+)/(\w+)(?:-\d+)?\s+\d+\s+(.*)$`)
	headerLine  = regexp.MustCompile(`^(?:--- (?:FAIL|SKIP): )?BenchmarkBacklog/backlog=([^/\s]+)\s*$`)
	whereLine   = regexp.MustCompile(`^\s+\S+\.go:\d+: (real server at .*|aerospiketest at .*|docker at .*)$`)
	fillLine    = regexp.MustCompile(`^\s+\S+\.go:\d+: backlog of \d+ jobs put in (\S+)$`)
	refusedLine = regexp.MustCompile(`^\s+\S+\.go:\d+: backlog of \d+ jobs on .*?, after (\S+): (.*)$`)
	refusedPut  = regexp.MustCompile(`^the store refused a job after (\d+) were put: (.*)$`)
)

func parse(out string) run {
	r := run{
		fill:    map[string]time.Duration{},
		metrics: map[string]map[string]map[string]float64{},
		refused: map[string]refusal{},
	}
	add := func(b string) {
		if !slices.Contains(r.backlogs, b) {
			r.backlogs = append(r.backlogs, b)
		}
	}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := headerLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			b, op := m[1], m[2]
			add(b)
			if r.metrics[b] == nil {
				r.metrics[b] = map[string]map[string]float64{}
			}
			vals := map[string]float64{}
			f := strings.Fields(m[3])
			for i := 0; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					vals[f[i+1]] = v
				}
			}
			r.metrics[b][op] = vals
			continue
		}
		if cur == "" {
			continue
		}
		if m := whereLine.FindStringSubmatch(line); m != nil && r.where == "" {
			r.where = m[1]
		} else if m := fillLine.FindStringSubmatch(line); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				add(cur)
				r.fill[cur] = d
			}
		} else if m := refusedLine.FindStringSubmatch(line); m != nil {
			add(cur)
			f := refusal{put: -1, err: m[2]}
			f.after, _ = time.ParseDuration(m[1])
			if p := refusedPut.FindStringSubmatch(m[2]); p != nil {
				f.put, _ = strconv.Atoi(p[1])
				f.err = p[2]
			}
			r.refused[cur] = f
		}
	}
	return r
}

// column is one figure of the table.
type column struct {
	head   string
	op     string
	unit   string
	format func(lo, hi float64) string
}

var (
	timeColumns = []column{
		{"RawPut", "RawPut", "ns/op", durRange},
		{"Put", "Put", "ns/op", durRange},
		{"Reserve+Delete", "ReserveDelete", "ns/op", durRange},
		{"8+8 jobs/s", "Concurrent", "jobs/s", numRange},
		{"RawPut8 ops/s", "RawPut8", "ops/s", numRange},
		{"Put / RawPut", "Put", "x-rawput", ratioRange},
		{"R+D / RawPut", "ReserveDelete", "x-rawput", ratioRange},
		{"RawPut8 / 8+8", "Concurrent", "x-rawput8", ratioRange},
	}
	cmdColumns = []column{
		{"Put", "Put", "srv-ops/op", ratioRange},
		{"Reserve+Delete", "ReserveDelete", "srv-ops/op", ratioRange},
		{"8+8, per job", "Concurrent", "srv-ops/op", ratioRange},
		{"8+8 lost CAS, per job", "Concurrent", "cas-lost/op", ratioRange},
	}
)

// report writes the tables of the outputs of the runs to w.
func report(w io.Writer, outs []string) error {
	var runs []run
	var backlogs []string
	wheres := map[string]bool{}
	for i, o := range outs {
		r := parse(o)
		if len(r.backlogs) == 0 {
			return fmt.Errorf("run %d: no BenchmarkBacklog results", i+1)
		}
		runs = append(runs, r)
		for _, b := range r.backlogs {
			if !slices.Contains(backlogs, b) {
				backlogs = append(backlogs, b)
			}
		}
		if r.where != "" {
			wheres[r.where] = true
		}
	}
	fmt.Fprintf(w, "%d run(s); each cell is the range over the runs (ratios within each run).\n", len(runs))
	for _, wh := range slices.Sorted(maps.Keys(wheres)) {
		fmt.Fprintf(w, "Target: %s.\n", wh)
	}
	fmt.Fprintln(w)
	table(w, runs, backlogs, "fill", timeColumns, true)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Record commands the server ran per operation, timed part only (srv-ops/op):")
	fmt.Fprintln(w)
	table(w, runs, backlogs, "", cmdColumns, false)
	return nil
}

func table(w io.Writer, runs []run, backlogs []string, fillHead string, cols []column, refusals bool) {
	head := []string{"backlog"}
	if fillHead != "" {
		head = append(head, fillHead)
	}
	for _, c := range cols {
		head = append(head, c.head)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(head)-1))
	for _, b := range backlogs {
		var why []refusal
		for _, r := range runs {
			if f, ok := r.refused[b]; ok {
				why = append(why, f)
			}
		}
		if len(why) > 0 && len(why) == countWith(runs, b) {
			if refusals {
				fmt.Fprintf(w, "| %s | %s |\n", b, refusedCell(why, len(runs)))
			}
			continue
		}
		row := []string{b}
		if fillHead != "" {
			var fills []float64
			for _, r := range runs {
				if d, ok := r.fill[b]; ok {
					fills = append(fills, d.Seconds())
				}
			}
			row = append(row, cell(fills, func(lo, hi float64) string { return secRange(lo, hi) }))
		}
		for _, c := range cols {
			var vals []float64
			for _, r := range runs {
				if v, ok := r.metrics[b][c.op][c.unit]; ok {
					vals = append(vals, v)
				}
			}
			row = append(row, cell(vals, c.format))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// refusedCell describes the refusals of a backlog in len(why) of n runs.
func refusedCell(why []refusal, n int) string {
	var puts, afters []float64
	for _, f := range why {
		if f.put >= 0 {
			puts = append(puts, float64(f.put))
		}
		afters = append(afters, f.after.Seconds())
	}
	took := ""
	if len(puts) > 0 {
		took = fmt.Sprintf(" after %s jobs", cell(puts, func(lo, hi float64) string {
			if lo == hi {
				return strconv.Itoa(int(lo))
			}
			return fmt.Sprintf("%d–%d", int(lo), int(hi))
		}))
	}
	return fmt.Sprintf("refused in %d of %d runs%s, %s into the fill: %s", len(why), n, took, cell(afters, secRange), why[0].err)
}

// countWith counts the runs that mention backlog b.
func countWith(runs []run, b string) int {
	n := 0
	for _, r := range runs {
		if slices.Contains(r.backlogs, b) {
			n++
		}
	}
	return n
}

func cell(vals []float64, format func(lo, hi float64) string) string {
	if len(vals) == 0 {
		return "–"
	}
	return format(slices.Min(vals), slices.Max(vals))
}

// durRange formats a range of nanoseconds in µs or ms.
func durRange(lo, hi float64) string {
	unit, div := "µs", 1e3
	if hi >= 1e6 {
		unit, div = "ms", 1e6
	}
	return spanOf(lo/div, hi/div) + " " + unit
}

func secRange(lo, hi float64) string { return spanOf(lo, hi) + " s" }

func numRange(lo, hi float64) string {
	if hi >= 10_000 {
		return spanOf(lo/1e3, hi/1e3) + "k"
	}
	return spanOf(lo, hi)
}

func ratioRange(lo, hi float64) string { return spanOf(lo, hi) }

// spanOf formats lo–hi to three significant digits, or one value when
// they print the same.
func spanOf(lo, hi float64) string {
	a, b := sig3(lo), sig3(hi)
	if a == b {
		return a
	}
	return a + "–" + b
}

func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	d := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	if d < 0 {
		d = 0
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}
