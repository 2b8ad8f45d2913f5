package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/beanstalk"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/dashboard"
	"github.com/beanspike/beanspike/metrics"
)

// observer serves what operators watch: Prometheus metrics of the store's
// clients and tubes, /healthz and /readyz.
type observer struct {
	log   *slog.Logger
	reg   *prometheus.Registry
	m     *metrics.Metrics
	probe beanspike.Queue // reads the tubes and answers /readyz
	ui    http.Handler    // the dashboard
	hs    *http.Server
	done  chan struct{}
}

// newObserver makes the metrics of root's clients.
func newObserver(root *store, log *slog.Logger) (*observer, error) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.WithBackend(root.kind))
	if err != nil {
		return nil, err
	}
	probe, err := root.newClient()
	if err != nil {
		return nil, err
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Tubes(probe),
	)
	return &observer{log: log, reg: reg, m: m, probe: probe}, nil
}

// wrap makes newClient's clients record their calls.
func (o *observer) wrap(newClient func() (beanspike.Queue, error)) func() (beanspike.Queue, error) {
	return func() (beanspike.Queue, error) {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		return o.m.Wrap(c), nil
	}
}

// countConns reports the beanstalk port's connections.
func (o *observer) countConns(bs *beanstalk.Server) {
	o.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "beanspike", Subsystem: "beanstalk", Name: "connections",
		Help: "Connections the beanstalk port is serving.",
	}, func() float64 { return float64(bs.Conns()) }))
}

// dashboard mounts the web dashboard at /ui/, behind tokens if any.
func (o *observer) dashboard(tokens *tokenFile) error {
	opts := []dashboard.Option{dashboard.WithPrefix("/ui/")}
	if tokens != nil {
		opts = append(opts, dashboard.WithTokenFunc(tokens.first))
	} else {
		o.log.Warn("the dashboard at /ui/ of -http lets anyone who reaches it delete jobs and tubes: give -token-file")
	}
	h, err := dashboard.New(o.probe, opts...)
	if err != nil {
		return err
	}
	o.ui = h
	return nil
}

// countSessions reports the remote port's sessions.
func (o *observer) countSessions(srv *remote.Server) {
	o.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "beanspike", Subsystem: "remote", Name: "sessions",
		Help: "Sessions the remote port holds open.",
	}, func() float64 { return float64(srv.Sessions()) }))
}

// listen serves the metrics and health endpoints, and the dashboard, on
// addr, over TLS with cfg if it is not nil, and returns the address it
// listens on.
func (o *observer) listen(addr string, cfg *tls.Config) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("-http: %w", err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	mux := http.NewServeMux()
	if o.ui != nil {
		mux.Handle("/ui/", o.ui)
		mux.Handle("/{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	mux.Handle("/metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelError)}))
	mux.Handle("/healthz", metrics.Healthz())
	mux.Handle("/readyz", metrics.Readyz(o.probe, 2*time.Second))
	o.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	o.done = make(chan struct{})
	go func() {
		defer close(o.done)
		if err := o.hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("beanspike http stopped", "err", err)
		}
	}()
	return l.Addr().String(), nil
}

// close stops the endpoints and closes the probe client.
func (o *observer) close() {
	if o.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = o.hs.Shutdown(ctx)
		<-o.done
	}
	_ = o.probe.Close()
}
