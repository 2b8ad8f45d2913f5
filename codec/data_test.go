package codec_test

import (
	"fmt"
	"math/rand/v2"
)

// newRand returns a deterministic source for test data.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// randomBytes returns n incompressible bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	_, _ = r.Read(b)
	return b
}

// textBytes returns n bytes of JSON-like log lines: compressible about as
// much as typical job bodies (roughly 3 to 5 times).
func textBytes(seed uint64, n int) []byte {
	r := newRand(seed)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	actions := []string{"login", "logout", "purchase", "refund", "view", "search", "upload"}
	b := make([]byte, 0, n+128)
	for len(b) < n {
		b = fmt.Appendf(b, `{"id":%d,"user":%q,"action":%q,"amount":%d.%02d,"ok":%t}`+"\n",
			r.IntN(1_000_000), users[r.IntN(len(users))], actions[r.IntN(len(actions))],
			r.IntN(10_000), r.IntN(100), r.IntN(10) != 0)
	}
	return b[:n]
}

// zeroBytes returns n zero bytes: LZ4's best case.
func zeroBytes(_ uint64, n int) []byte { return make([]byte, n) }

// patternBytes returns n bytes repeating a short random pattern.
func patternBytes(seed uint64, n int) []byte {
	r := newRand(seed)
	p := make([]byte, 1+r.IntN(7))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = p[i%len(p)]
	}
	return b
}

// mixedBytes returns n random bytes with a repeated run in the middle:
// compressible by a few bytes only, near the skip threshold.
func mixedBytes(seed uint64, n int) []byte {
	b := randomBytes(seed, n)
	if n >= 8 {
		mid := n / 2
		run := min(n/8, 64)
		for i := mid; i < mid+run && i < n; i++ {
			b[i] = 'x'
		}
	}
	return b
}

// families are the kinds of test data, by name.
var families = []struct {
	name string
	gen  func(seed uint64, n int) []byte
}{
	{"random", randomBytes},
	{"text", textBytes},
	{"zeros", zeroBytes},
	{"pattern", patternBytes},
	{"mixed", mixedBytes},
}
