package beanstalk_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/beanstalk"
)

// Serving a queue over beanstalkd's protocol: any beanstalkd client can
// then talk to the listener. Here a raw connection puts a job, and the
// job is read back through the store's own API.
func Example() {
	root, err := memory.New()
	if err != nil {
		panic(err)
	}
	defer root.Close()
	srv, err := beanstalk.NewServer(func() (beanspike.Queue, error) { return root.NewClient() })
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // loopback: the protocol has no authentication
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "use emails\r\nput 10 0 60 5\r\nhello\r\n")
	for range 2 {
		line, _ := r.ReadString('\n')
		fmt.Println(strings.TrimSpace(line))
	}

	st, _ := root.StatsTube(context.Background(), "emails")
	fmt.Println("ready in emails:", st.Ready)
	// Output:
	// USING emails
	// INSERTED 1
	// ready in emails: 1
}
