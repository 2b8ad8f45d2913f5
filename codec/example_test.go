package codec_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/beanspike/beanspike/codec"
)

func Example() {
	c, err := codec.NewLZ4(nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, body := range [][]byte{
		bytes.Repeat([]byte(`{"user":"alice","action":"login"}`), 100),
		[]byte("hi"),
	} {
		stored, outcome, err := c.Encode(nil, body)
		if err != nil {
			log.Fatal(err)
		}
		compressed, rawLen, err := codec.Info(stored)
		if err != nil {
			log.Fatal(err)
		}
		back, err := c.Decode(nil, stored)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d bytes: %v (compressed %v, skipped %v), smaller %v, raw length %d, round trip %v\n",
			len(body), outcome, compressed, outcome.Skipped(), len(stored) < len(body), rawLen, bytes.Equal(back, body))
	}
	fmt.Printf("% x\n", must(c.Encode(nil, []byte("hi"))))
	// Output:
	// 3300 bytes: compressed (compressed true, skipped false), smaller true, raw length 3300, round trip true
	// 2 bytes: skipped (compressed false, skipped true), smaller false, raw length 2, round trip true
	// 00 02 68 69
}

func must(b []byte, _ codec.Outcome, err error) []byte {
	if err != nil {
		log.Fatal(err)
	}
	return b
}
