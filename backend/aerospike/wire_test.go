package aerospike

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// wireEntries are entries whose encodings take every integer and blob
// header width.
func wireEntries(r *rand.Rand) []entry {
	ints := []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1,
		math.MaxInt64, -1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	reasons := []string{"", "x", strings.Repeat("r", 14), strings.Repeat("r", 200), strings.Repeat("r", 70000)}
	var out []entry
	for _, k := range ints {
		for _, reason := range reasons {
			out = append(out, entry{
				k1: k, k2: ints[r.IntN(len(ints))], pri: r.Uint32(), ttr: r.Int64(),
				reserves: r.Uint32(), timeouts: r.Uint32() >> 20, releases: 1, buries: 0, kicks: 3,
				delay: -r.Int64N(1 << 40), owner: [2]int64{r.Int64(), -r.Int64()}, put: k, reason: reason,
			})
		}
	}
	return out
}

func expBytes(t *testing.T, e *as.Expression) string {
	t.Helper()
	s, err := e.Base64()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGuardWire checks that the guards the backend encodes itself are
// byte for byte the client's encoding of the same expression.
func TestGuardWire(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	es := wireEntries(r)
	ids := []beanspike.ID{1, 127, 128, 1 << 20, 1 << 40, math.MaxInt64}
	for _, n := range []int{1, 2, 3, 15, 16, 40} {
		for range 20 {
			moves := make([]move, n)
			for i := range moves {
				moves[i] = move{id: ids[r.IntN(len(ids))], from: stateBins[r.IntN(len(stateBins))], old: es[r.IntN(len(es))]}
			}
			if got, want := expBytes(t, guard(moves)), expBytes(t, guardTree(moves)); got != want {
				t.Fatalf("%d moves: guard encodes\n%.200s\nthe client\n%.200s", n, got, want)
			}
		}
	}
}

// TestEntryValueWire checks that an entry sent as a ready-made value is
// encoded as the client encodes its generic list.
func TestEntryValueWire(t *testing.T) {
	for _, e := range wireEntries(rand.New(rand.NewPCG(3, 4))) {
		got := expBytes(t, as.ExpListValueVal(e.value()))
		want := expBytes(t, as.ExpListValueVal(e.list()))
		if got != want {
			t.Fatalf("entry %+v: encoded\n%.200s\nthe client\n%.200s", e, got, want)
		}
		if n := len(e.list()[2].([]byte)); n != e.packedLen() {
			t.Fatalf("entry %+v: packedLen %d, packed %d bytes", e, e.packedLen(), n)
		}
	}
}
