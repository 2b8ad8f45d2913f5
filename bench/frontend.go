package bench

import (
	"context"
	"net"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/beanstalk"
)

// BeanstalkFrontEnd is beanstalkd's protocol served by package beanstalk
// over the memory backend, on loopback, driven by the same go-beanstalk
// client as the Beanstalkd target.
func BeanstalkFrontEnd() Target {
	return Target{Name: "beanstalk+memory", Start: startFrontEnd}
}

func startFrontEnd() (Session, error) {
	first, err := memory.New(memory.WithMaxBodySize(maxJobSize))
	if err != nil {
		return nil, err
	}
	srv, err := beanstalk.NewServer(func() (beanspike.Queue, error) { return first.NewClient() },
		beanstalk.WithMaxJobSize(maxJobSize))
	if err != nil {
		first.Close()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		first.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	return &beanstalkSession{addr: l.Addr().String(), stop: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		<-done
		first.Close()
		return err
	}}, nil
}
