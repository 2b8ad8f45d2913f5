package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/beanstalk"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// serve runs a server until ctx ends, then shuts it down gracefully
// within -grace.
func (a *app) serve(ctx context.Context, args []string) error {
	fs := a.flags("serve", "")
	listen := fs.String("listen", DefaultAddr, "TCP `address` for remote clients")
	bsAddr := fs.String("beanstalk", "", "also serve beanstalkd's protocol on this TCP `address` (e.g. 127.0.0.1:11300; the protocol has no authentication: keep it on loopback or a private network)")
	bsConns := fs.Int("beanstalk-max-conns", beanstalk.DefaultMaxConns, "most `connections` the beanstalk port serves at once; more are closed at once")
	httpAddr := fs.String("http", "", "serve Prometheus metrics at /metrics, and /healthz and /readyz, on this TCP `address` (e.g. 127.0.0.1:9090)")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	sec := a.serverTLSFlags(fs)
	asURL := fs.String("aerospike", "", "use the Aerospike store at `host:port/namespace` instead of memory")
	maxBody := fs.Int("max-body", beanspike.DefaultMaxBodySize, "largest job body in `bytes` (with -aerospike, what the namespace's max-record-size allows unless set)")
	grace := fs.Duration("grace", 10*time.Second, "how long a graceful shutdown may take")
	verbose := fs.Bool("v", false, "log sessions and connections")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level})
	default:
		return usageErr(fs, "-log-format %q: want text or json", *logFormat)
	}
	log := slog.New(handler)
	tlsCfg, err := sec.config()
	if err != nil {
		return usageErr(fs, "%v", err)
	}
	var tokens *tokenFile
	if *sec.tokenFile != "" {
		if tokens, err = newTokenFile(*sec.tokenFile); err != nil {
			return usageErr(fs, "-token-file: %v", err)
		}
	}

	bodySet := false
	fs.Visit(func(f *flag.Flag) { bodySet = bodySet || f.Name == "max-body" })
	if !bodySet && *asURL != "" {
		*maxBody = 0 // the store's own limit
	}
	root, what, err := openStore(ctx, *asURL, *maxBody, log)
	if err != nil {
		if errors.Is(err, errUsage) {
			return usageErr(fs, "%v", err)
		}
		return err
	}
	defer root.Close()
	*maxBody = root.maxBody
	newClient := func() (beanspike.Queue, error) { return root.newClient() }
	var obs *observer
	if *httpAddr != "" {
		obs, err = newObserver(root, log)
		if err != nil {
			return err
		}
		defer obs.close()
		newClient = obs.wrap(newClient)
	}

	remoteOpts := []remote.Option{remote.WithLogger(log), remote.WithMaxFrameSize(max(*maxBody+64<<10, 1<<20))}
	if tokens != nil {
		remoteOpts = append(remoteOpts, remote.WithTokenCheck(tokens.valid))
	}
	srv, err := remote.NewServer(newClient, remoteOpts...)
	if err != nil {
		return err
	}
	nodeOpts := []vnet.Option{vnet.WithLogger(log)}
	if tlsCfg != nil {
		nodeOpts = append(nodeOpts, vnet.WithListenTLS(tlsCfg))
	}
	node, err := vnet.New(nodeOpts...)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := srv.Listen(node, remote.DefaultService); err != nil {
		return err
	}
	addr, err := node.Listen("tcp", *listen)
	if err != nil {
		srv.Close()
		return err
	}

	var (
		bs     *beanstalk.Server
		bsDone chan error
		bsAt   string
	)
	if *bsAddr != "" {
		// beanstalkd's own default (-z 65535), unless -max-body says.
		bsMax := min(beanstalk.DefaultMaxJobSize, *maxBody)
		if bodySet {
			bsMax = *maxBody
		}
		bs, err = beanstalk.NewServer(newClient, beanstalk.WithMaxJobSize(bsMax), beanstalk.WithMaxConns(*bsConns), beanstalk.WithLogger(log))
		if err != nil {
			srv.Close()
			return err
		}
		l, err := net.Listen("tcp", *bsAddr)
		if err == nil && tlsCfg != nil {
			l = tls.NewListener(l, tlsCfg)
		}
		if err != nil {
			srv.Close()
			return err
		}
		bsAt = l.Addr().String()
		bsDone = make(chan error, 1)
		go func() { bsDone <- bs.Serve(l) }()
	}

	// SIGUSR1 puts the beanstalk port in drain mode, as it does
	// beanstalkd: put is answered DRAINING from then on.
	usr1 := make(chan os.Signal, 1)
	if len(drainSignals) > 0 {
		signal.Notify(usr1, drainSignals...)
		defer signal.Stop(usr1)
	}

	httpAt := ""
	if obs != nil {
		obs.countSessions(srv)
		if bs != nil {
			obs.countConns(bs)
		}
		if err := obs.dashboard(tokens); err != nil {
			if bs != nil {
				bs.Close()
			}
			srv.Close()
			return err
		}
		httpAt, err = obs.listen(*httpAddr, tlsCfg)
		if err != nil {
			if bs != nil {
				bs.Close()
			}
			srv.Close()
			return err
		}
	}
	log.Info("beanspike serving", "store", what, "remote", addr.String(), "beanstalk", bsAt, "http", httpAt)
	if a.ready != nil {
		a.ready(addr.String(), bsAt)
	}

	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-bsDone:
			bsDone = nil
			break wait
		case <-usr1:
			if bs != nil && !bs.Draining() {
				bs.SetDraining(true)
				log.Info("beanspike draining: the beanstalk port refuses put")
			}
		}
	}
	log.Info("beanspike shutting down", "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	var errs []error
	if bs != nil {
		if err := bs.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("beanstalk shutdown: %w", err))
		}
		if bsDone != nil {
			<-bsDone
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("remote shutdown: %w", err))
	}
	if serveErr != nil && !errors.Is(serveErr, beanstalk.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("beanstalk: %w", serveErr))
	}
	if root.kind == "memory" {
		if n, err := countJobs(root); err == nil && n > 0 {
			log.Warn("beanspike stopped: the memory store's jobs are lost with the process", "jobs", n)
		} else {
			log.Info("beanspike stopped", "jobs", n)
		}
	} else {
		log.Info("beanspike stopped")
	}
	return errors.Join(errs...)
}

// store is the root client of the served store.
type store struct {
	newClient func() (beanspike.Queue, error)
	Close     func() error
	maxBody   int    // the largest body the store takes
	kind      string // "memory" or "aerospike"
}

// openStore opens the memory store, or the Aerospike store that
// asURL ("host:port/namespace") names. A maxBody of 0 takes the
// Aerospike store's own limit.
func openStore(ctx context.Context, asURL string, maxBody int, log *slog.Logger) (*store, string, error) {
	if asURL == "" {
		q, err := memory.New(memory.WithMaxBodySize(maxBody))
		if err != nil {
			return nil, "", err
		}
		return &store{newClient: func() (beanspike.Queue, error) { return q.NewClient() }, Close: q.Close, maxBody: maxBody, kind: "memory"}, "memory", nil
	}
	hostPort, ns, ok := strings.Cut(asURL, "/")
	if !ok || ns == "" {
		return nil, "", fmt.Errorf("%w: -aerospike %q is not host:port/namespace", errUsage, asURL)
	}
	host, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, "", fmt.Errorf("%w: -aerospike %q: %v", errUsage, asURL, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, "", fmt.Errorf("%w: -aerospike %q: bad port", errUsage, asURL)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := []aerospike.Option{aerospike.WithHosts(host), aerospike.WithPort(port), aerospike.WithNamespace(ns), aerospike.WithLogger(log)}
	if maxBody != 0 {
		opts = append(opts, aerospike.WithMaxBodySize(maxBody))
	}
	q, err := aerospike.New(cctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("connect to Aerospike at %s: %w", hostPort, err)
	}
	return &store{newClient: func() (beanspike.Queue, error) { return q.NewClient() }, Close: q.Close, maxBody: q.MaxBodySize(), kind: "aerospike"},
		"aerospike " + asURL, nil
}

// countJobs counts the jobs of every tube of root, in every state.
func countJobs(root *store) (int, error) {
	q, err := root.newClient()
	if err != nil {
		return 0, err
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tubes, err := q.Tubes(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tubes {
		st, err := q.StatsTube(ctx, t)
		if err != nil {
			continue
		}
		n += st.Ready + st.Reserved + st.Delayed + st.Buried
	}
	return n, nil
}
