package conformance

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantEqual fails the subtest when got differs from want, showing the
// difference as "(-want +got)".
func wantEqual(t testing.TB, what string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// only compares the named fields of struct type T and ignores its others,
// for an expectation that says what it checks and no more.
func only[T any](fields ...string) cmp.Option {
	keep := make(map[string]bool, len(fields))
	for _, f := range fields {
		keep[f] = true
	}
	typ := reflect.TypeFor[T]()
	return cmp.FilterPath(func(p cmp.Path) bool {
		sf, ok := p.Last().(cmp.StructField)
		return ok && p.Index(-2).Type() == typ && !keep[sf.Name()]
	}, cmp.Ignore())
}
