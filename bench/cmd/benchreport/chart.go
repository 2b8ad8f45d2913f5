package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/beanspike/beanspike/bench"
)

// palette colours the targets, in order.
var palette = []string{"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// chart draws grouped horizontal bars of jobs/s on a log scale: one group
// per workload, one bar per target.
func chart(results []result, workloads []bench.Workload, targets []string) string {
	byKey := map[[2]string]float64{}
	maxV := 1.0
	for _, r := range results {
		byKey[[2]string{r.workload, r.target}] = r.jobsPerSec
		maxV = math.Max(maxV, r.jobsPerSec)
	}
	const (
		left, barH, gap, width = 190, 9, 10, 900
	)
	top := 40 + 18*len(targets)
	groupH := barH*len(targets) + gap
	height := top + groupH*len(workloads) + 40
	decades := math.Ceil(math.Log10(maxV))
	x := func(v float64) float64 {
		if v < 1 {
			return 0
		}
		return math.Log10(v) / decades * (width - left - 20)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">Jobs per second (log scale; longer is faster)</text>`+"\n")
	for i, t := range targets {
		y := 34 + 18*i
		fmt.Fprintf(&b, `<rect x="10" y="%d" width="12" height="12" fill="%s"/><text x="28" y="%d">%s</text>`+"\n", y, palette[i%len(palette)], y+10, t)
	}
	for d := 0.0; d <= decades; d++ {
		gx := float64(left) + x(math.Pow(10, d))
		if d == 0 {
			gx = left
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">1e%d</text>`+"\n",
			gx, top-4, gx, height-30, gx, height-16, int(d))
	}
	for wi, w := range workloads {
		gy := top + wi*groupH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, gy+barH*len(targets)/2+4, w.Name)
		for ti, t := range targets {
			v := byKey[[2]string{w.Name, t}]
			y := gy + ti*barH
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %.0f jobs/s</title></rect>`+"\n",
				left, y, x(v), barH-1, palette[ti%len(palette)], w.Name, t, v)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
