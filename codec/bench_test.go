package codec_test

import (
	"fmt"
	"testing"

	"github.com/beanspike/beanspike/codec"
	"github.com/pierrec/lz4/v4"
)

// benchInputs are the bodies of the benchmarks: compressible (JSON-like
// lines) and incompressible (random) data of 1 KiB, 64 KiB and 1 MiB.
func benchInputs() []struct {
	name string
	data []byte
} {
	var in []struct {
		name string
		data []byte
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}} {
		in = append(in,
			struct {
				name string
				data []byte
			}{"text/" + size.name, textBytes(1, size.n)},
			struct {
				name string
				data []byte
			}{"random/" + size.name, randomBytes(1, size.n)})
	}
	return in
}

// BenchmarkEncode measures LZ4.Encode next to lz4.CompressBlock on the
// same data ("lz4" sub-benchmarks, the peer to compare with).
func BenchmarkEncode(b *testing.B) {
	c, err := codec.NewLZ4(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range benchInputs() {
		b.Run(in.name+"/codec", func(b *testing.B) {
			dst := make([]byte, 0, codec.MaxEncodedLen(len(in.data)))
			var out []byte
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				out, _, err = c.Encode(dst, in.data)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out))/float64(len(in.data)), "stored/raw")
		})
		b.Run(in.name+"/lz4", func(b *testing.B) {
			dst := make([]byte, lz4.CompressBlockBound(len(in.data)))
			var n int
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				n, err = lz4.CompressBlock(in.data, dst, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/float64(len(in.data)), "stored/raw")
		})
	}
}

// BenchmarkDecode measures LZ4.Decode next to lz4.UncompressBlock on the
// same data ("lz4" sub-benchmarks). For random data the codec stores the
// body raw, so it copies where lz4 decodes a literal-only block.
func BenchmarkDecode(b *testing.B) {
	c, err := codec.NewLZ4(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range benchInputs() {
		enc, outcome, err := c.Encode(nil, in.data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/codec", in.name), func(b *testing.B) {
			dst := make([]byte, 0, len(in.data))
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(dst, enc); err != nil {
					b.Fatal(err)
				}
			}
			if outcome.Compressed() {
				b.ReportMetric(1, "compressed")
			} else {
				b.ReportMetric(0, "compressed")
			}
		})
		b.Run(fmt.Sprintf("%s/lz4", in.name), func(b *testing.B) {
			block := make([]byte, lz4.CompressBlockBound(len(in.data)))
			n, err := lz4.CompressBlock(in.data, block, nil)
			if err != nil || n == 0 {
				b.Fatalf("lz4.CompressBlock: %d, %v", n, err)
			}
			block = block[:n]
			dst := make([]byte, len(in.data))
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := lz4.UncompressBlock(block, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
