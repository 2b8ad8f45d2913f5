// Package bench compares beanspike's backends and peers side by side, on
// the same workloads in one run.
//
// Run the benchmarks with
//
//	go test -run '^$' -bench . -benchmem ./bench
//
// or write the report (a markdown table and an SVG chart in this folder)
// with
//
//	go run ./bench/cmd/benchreport
//
// Targets that need something missing on the machine (beanstalkd's
// binary) are reported as missing, never silently left out.
package bench
