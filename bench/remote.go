package bench

import (
	"context"
	"errors"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// Remote is the in-memory backend served by a remote.Server and called
// through remote clients over vnet on loopback TCP: one server node, and
// one client node linked to it that every client of the session shares,
// as the clients of one process would.
func Remote() Target {
	return Target{Name: "remote", Compresses: true, Start: startRemote}
}

func startRemote() (Session, error) {
	store, err := memory.New(memory.WithMaxBodySize(maxJobSize))
	if err != nil {
		return nil, err
	}
	srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
	if err != nil {
		store.Close()
		return nil, err
	}
	sn, err := vnet.New()
	if err != nil {
		store.Close()
		return nil, err
	}
	cn, err := vnet.New()
	if err != nil {
		sn.Close()
		store.Close()
		return nil, err
	}
	closeAll := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return errors.Join(cn.Close(), srv.Shutdown(ctx), sn.Close(), store.Close())
	}
	if err := srv.Listen(sn, remote.DefaultService); err != nil {
		closeAll()
		return nil, err
	}
	addr, err := sn.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeAll()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cn.Connect(ctx, "tcp", addr.String()); err != nil {
		closeAll()
		return nil, err
	}
	return queueSession{
		newClient: func() (beanspike.Queue, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return remote.Dial(ctx, cn, remote.DefaultService)
		},
		close: closeAll,
	}, nil
}
