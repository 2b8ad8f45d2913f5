package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serve -http serves metrics that the Prometheus text parser reads, with
// the calls of the remote clients and the tubes' jobs, and the health
// endpoints.
func TestServeMetrics(t *testing.T) {
	httpAddr := freeAddr(t)
	addr, _ := server(t, "-http", httpAddr, "-beanstalk", "127.0.0.1:0", "-log-format", "json")
	want(t, runCmd(t, addr, "", "put", "-tube", "m", "one"), exitOK)
	want(t, runCmd(t, addr, "", "put", "-tube", "m", "-compress", "two"), exitOK)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	sample := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("/metrics lacks %s", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
		t.Fatalf("/metrics has no %s with %v", name, labels)
		return 0
	}
	if got := sample("beanspike_jobs_total", map[string]string{"event": "put", "backend": "memory"}); got != 2 {
		t.Errorf("puts: %v, want 2", got)
	}
	if got := sample("beanspike_jobs_total", map[string]string{"event": "compression_asked"}); got != 1 {
		t.Errorf("puts asking for compression: %v, want 1", got)
	}
	if got := sample("beanspike_tube_jobs", map[string]string{"tube": "m", "state": "ready"}); got != 2 {
		t.Errorf("ready jobs of tube m: %v, want 2", got)
	}
	sample("beanspike_call_duration_seconds", map[string]string{"op": "put"})
	sample("beanspike_beanstalk_connections", nil)
	sample("beanspike_remote_sessions", nil)
	sample("go_goroutines", nil)
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func TestServeLogFormat(t *testing.T) {
	r := runCmd(t, "", "", "serve", "-log-format", "yaml")
	if r.code != exitUsage {
		t.Fatalf("serve -log-format yaml: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}
