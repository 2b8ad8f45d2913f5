package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// Aerospike is the Aerospike backend. It runs against a real server when
// AEROSPIKE_HOST (and AEROSPIKE_PORT) are set, otherwise against the
// in-process Aerospike-compatible server of package aerospiketest, whose
// costs are not those of a real server: compare its figures with care.
// Each session is a store of its own, under a random set prefix.
func Aerospike() Target {
	name := "aerospike-on-aerospiketest"
	if os.Getenv(aerospike.EnvHost) != "" {
		name = "aerospike-on-server"
	}
	return Target{Name: name, Compresses: true, Start: startAerospike}
}

func startAerospike() (Session, error) {
	opts := []aerospike.Option{
		// One set prefix for every run, a key prefix per run: runs add no
		// set names to a long-lived server (a namespace holds 4,095).
		aerospike.WithSetPrefix("beanspikebench"),
		aerospike.WithKeyPrefix(fmt.Sprintf("run%08x", rand.Uint32())),
	}
	var srv *aerospiketest.Server
	if os.Getenv(aerospike.EnvHost) == "" {
		var err error
		if srv, err = aerospiketest.NewServer(); err != nil {
			return nil, err
		}
		opts = append(opts, aerospike.WithHosts(srv.Host()), aerospike.WithPort(srv.Port()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := aerospike.New(ctx, opts...)
	if err != nil {
		if srv != nil {
			srv.Close()
		}
		return nil, err
	}
	return queueSession{
		newClient: func() (beanspike.Queue, error) { return first.NewClient() },
		close: func() error {
			// Leave nothing behind on a real server.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if tubes, err := first.Tubes(ctx); err == nil {
				for _, t := range tubes {
					_, _ = first.DeleteTube(ctx, t)
				}
			}
			first.Close()
			if srv != nil {
				return srv.Close()
			}
			return nil
		},
	}, nil
}
