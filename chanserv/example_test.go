package chanserv_test

import (
	"context"
	"fmt"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
)

func Example() {
	ctx := context.Background()
	mux := memmux.New()

	srv, err := chanserv.NewServer(mux)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)
	srv.Handle("greeter", chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
		for _, lang := range []string{"en", "fr"} {
			src, err := w.NewSource(ctx, []byte(lang))
			if err != nil {
				return err
			}
			greeting := map[string]string{"en": "hello", "fr": "bonjour"}[lang]
			if err := src.WriteFrame(ctx, fmt.Appendf(nil, "%s, %s", greeting, req.Body)); err != nil {
				return err
			}
			if err := src.Close(nil); err != nil {
				return err
			}
		}
		return nil
	}))

	cl, err := chanserv.NewClient(mux)
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	resp, err := cl.Post(ctx, "greeter", []byte("world"))
	if err != nil {
		panic(err)
	}
	for src, err := range resp.Sources(ctx) {
		if err != nil {
			fmt.Println("failed:", err)
			return
		}
		for frame, err := range src.Frames(ctx) {
			if err != nil {
				fmt.Println("source failed:", err)
				return
			}
			fmt.Printf("%s: %s\n", src.Header(), frame)
		}
	}
	// Output:
	// en: hello, world
	// fr: bonjour, world
}
