package beanspike_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/beanspike/beanspike"
)

func TestNormalizeTubes(t *testing.T) {
	long := make([]string, 0, 60)
	var longWant []string
	for i := range 40 {
		name := fmt.Sprint("t", i%20)
		long = append(long, name)
		if i < 20 {
			longWant = append(longWant, name)
		}
	}
	for _, c := range []struct {
		in, want []string
	}{
		{nil, []string{beanspike.DefaultTube}},
		{[]string{}, []string{beanspike.DefaultTube}},
		{[]string{"a"}, []string{"a"}},
		{[]string{"b", "a", "b", "c", "a"}, []string{"b", "a", "c"}},
		{long, longWant},
	} {
		got, err := beanspike.NormalizeTubes(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("NormalizeTubes(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range [][]string{{"a", "-b"}, append(slices.Clone(long), "")} {
		if got, err := beanspike.NormalizeTubes(in); !errors.Is(err, beanspike.ErrInvalidTube) {
			t.Errorf("NormalizeTubes(%q) = %q, %v; want ErrInvalidTube", in, got, err)
		}
	}
}

// BenchmarkNormalizeTubes measures the normalisation of a Reserve's tube
// list, from one tube to the thousands a beanstalk client may watch.
func BenchmarkNormalizeTubes(b *testing.B) {
	for _, n := range []int{1, 4, 10000} {
		tubes := make([]string, n)
		for i := range tubes {
			tubes[i] = fmt.Sprint("tube-", i)
		}
		b.Run(fmt.Sprint("tubes=", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := beanspike.NormalizeTubes(tubes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
