package remote

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

func TestWireRoundTrip(t *testing.T) {
	js := &beanspike.JobStats{ID: 7, Tube: "t", State: beanspike.Buried, Priority: 3, Age: time.Second,
		Delay: -2, TTR: time.Minute, TimeLeft: 5, Reserves: 1, Timeouts: 2, Releases: 3, Buries: 4,
		Kicks: 5, BuryReason: "why", Size: 10, StoredSize: 6, Compressed: true}
	d := dec{b: appendJobStats(nil, js)}
	if got := d.jobStats(); d.done() != nil || !reflect.DeepEqual(got, js) {
		t.Fatalf("JobStats round trip: %+v, %v; want %+v", got, d.err, js)
	}
	ts := &beanspike.TubeStats{Name: "x", Urgent: 1, Ready: 2, Reserved: 3, Delayed: 4, Buried: 5,
		TotalJobs: 6, Waiting: 7, Deletes: 8, Pauses: 9, Pause: 10, PauseLeft: 11, Compressed: 12, CompressionSkipped: 13}
	d = dec{b: appendTubeStats(nil, ts)}
	if got := d.tubeStats(); d.done() != nil || !reflect.DeepEqual(got, ts) {
		t.Fatalf("TubeStats round trip: %+v, %v; want %+v", got, d.err, ts)
	}
	for _, n := range []int{0, 1, inlineMax, inlineMax + 1} {
		j := &beanspike.Job{ID: 9, Tube: "tube", Body: make([]byte, n), Priority: 1 << 31, TTR: time.Hour, Reserves: 4}
		d = dec{b: appendJob(nil, j)}
		got, framed := d.job()
		if err := d.done(); err != nil {
			t.Fatalf("job of %d bytes: %v", n, err)
		}
		if n > inlineMax {
			if framed != n || got.Body != nil {
				t.Fatalf("job of %d bytes: framed %d, inline %d bytes", n, framed, len(got.Body))
			}
			got.Body = j.Body
		}
		if !reflect.DeepEqual(got, j) {
			t.Fatalf("job round trip: %+v, want %+v", got, j)
		}
	}
	o := beanspike.PutOptions{Priority: 5, Delay: -time.Second, TTR: 3 * time.Second, Compress: true}
	d = dec{b: appendPutOptions(nil, o)}
	opts := d.putOptions()
	if d.done() != nil {
		t.Fatal(d.err)
	}
	if _, err := beanspike.NewPutOptions(opts...); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Fatalf("negative delay lost on the wire: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	for _, s := range sentinels {
		err := errOf(codeOf(s.err), "detail")
		if !errors.Is(err, s.err) {
			t.Errorf("code %d: %v does not match %v", s.code, err, s.err)
		}
	}
	if err := errOf(codeOf(errors.New("x")), "x"); errors.Is(err, beanspike.ErrUnavailable) || err.Error() != "remote: x" {
		t.Errorf("an unknown error came back as %v", err)
	}
	if codeOf(context.Canceled) != codeCanceled {
		t.Error("context.Canceled has no code of its own")
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic or
// allocate beyond the input's size.
func FuzzDecode(f *testing.F) {
	f.Add(appendJob(nil, &beanspike.Job{ID: 1, Tube: "t", Body: []byte("x")}))
	f.Add(appendJobStats(nil, &beanspike.JobStats{ID: 1}))
	f.Add(appendTubeStats(nil, &beanspike.TubeStats{Name: "t"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fn := range []func(d *dec){
			func(d *dec) { d.job() },
			func(d *dec) { d.jobStats() },
			func(d *dec) { d.tubeStats() },
			func(d *dec) { d.putOptions() },
			func(d *dec) {
				for range d.count(1) {
					d.string()
				}
			},
		} {
			d := dec{b: b}
			fn(&d)
			d.done()
		}
		checkSession(b)
	})
}
