package conformance

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/beanspike/beanspike"
)

var bodyTests = []test{
	{"BodyRoundTrip", testBodyRoundTrip},
	{"BodyLimit", testBodyLimit},
	{"Compression", testCompression},
	{"BodyOwnership", testBodyOwnership},
}

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func allBytes() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// roundTrip puts body and checks that Peek and Reserve return it intact.
func (e *env) roundTrip(q beanspike.Queue, what string, body []byte, opts ...beanspike.PutOption) beanspike.ID {
	e.t.Helper()
	id := e.put(q, "rt", body, opts...)
	p, err := q.Peek(e.ctx, id)
	ok(e.t, err, "Peek of %s", what)
	if !bytes.Equal(p.Body, body) {
		e.t.Fatalf("Peek of %s: body of %d bytes differs from the %d bytes put", what, len(p.Body), len(body))
	}
	j := e.reserveID(q, id, "rt")
	if !bytes.Equal(j.Body, body) {
		e.t.Fatalf("Reserve of %s: body of %d bytes differs from the %d bytes put", what, len(j.Body), len(body))
	}
	if s := e.statsJob(q, id); s.Size != len(body) {
		e.t.Fatalf("StatsJob.Size of %s = %d, want %d", what, s.Size, len(body))
	}
	ok(e.t, q.Delete(e.ctx, id), "Delete")
	return id
}

func testBodyRoundTrip(t *testing.T, e *env) {
	q := e.client()
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"nil body", nil},
		{"empty body", []byte{}},
		{"one byte", []byte{0}},
		{"every byte value", allBytes()},
		{"random body", randomBytes(10000, 1)},
	} {
		e.roundTrip(q, c.name, c.body)
		e.roundTrip(q, c.name+" with compression", c.body, beanspike.WithCompression())
	}
}

func testBodyLimit(t *testing.T, e *env) {
	q := e.client()
	max := e.caps.MaxBodySize
	e.roundTrip(q, "a body of exactly the maximum size", randomBytes(max, 2))
	e.roundTrip(q, "a compressible body of exactly the maximum size", bytes.Repeat([]byte("z"), max), beanspike.WithCompression())
	for _, c := range []struct {
		name string
		body []byte
		opts []beanspike.PutOption
	}{
		{"one byte too big", randomBytes(max+1, 3), nil},
		{"compressible, one byte too big before compression", bytes.Repeat([]byte("z"), max+1), []beanspike.PutOption{beanspike.WithCompression()}},
	} {
		before := snapshot(t, e.ctx, q, nil)
		_, err := q.Put(e.ctx, "rt", c.body, c.opts...)
		wantErr(t, err, beanspike.ErrJobTooBig, "Put of a body %s", c.name)
		if after := snapshot(t, e.ctx, q, nil); !before.equal(after) {
			t.Fatalf("refused Put changed the store:\nbefore %s\nafter  %s", before, after)
		}
	}
}

func testCompression(t *testing.T, e *env) {
	q := e.client()
	compressible := bytes.Repeat([]byte("compress me, please. "), 200)
	incompressible := randomBytes(4096, 4)

	id := e.put(q, "c", compressible, beanspike.WithCompression())
	s := e.statsJob(q, id)
	if !s.Compressed || s.Size != len(compressible) || s.StoredSize <= 0 || s.StoredSize >= s.Size {
		t.Fatalf("StatsJob of a compressible body put WithCompression = %+v, want compressed, stored smaller than %d bytes", s, len(compressible))
	}
	if ts := e.statsTube(q, "c"); ts.Compressed != 1 || ts.CompressionSkipped != 0 {
		t.Fatalf("StatsTube after one compressed put = %+v", ts)
	}
	id2 := e.put(q, "c", incompressible, beanspike.WithCompression())
	s = e.statsJob(q, id2)
	if s.Compressed || s.Size != len(incompressible) || s.StoredSize < s.Size {
		t.Fatalf("StatsJob of an incompressible body put WithCompression = %+v, want stored raw", s)
	}
	if ts := e.statsTube(q, "c"); ts.Compressed != 1 || ts.CompressionSkipped != 1 {
		t.Fatalf("StatsTube after a compressed and a skipped put = %+v, want 1 and 1", ts)
	}
	id3 := e.put(q, "c", compressible)
	s = e.statsJob(q, id3)
	if s.Compressed || s.Size != len(compressible) || s.StoredSize != len(compressible) {
		t.Fatalf("StatsJob of a body put without compression = %+v, want stored raw, %d bytes", s, len(compressible))
	}
	if ts := e.statsTube(q, "c"); ts.Compressed != 1 || ts.CompressionSkipped != 1 {
		t.Fatalf("a put without compression changed the compression counters: %+v", ts)
	}
	for _, c := range []struct {
		id   beanspike.ID
		body []byte
	}{{id, compressible}, {id2, incompressible}, {id3, compressible}} {
		p, err := q.Peek(e.ctx, c.id)
		ok(t, err, "Peek")
		if !bytes.Equal(p.Body, c.body) {
			t.Fatalf("Peek(%d) returned a different body", c.id)
		}
		j := e.reserveID(q, c.id, "c")
		if !bytes.Equal(j.Body, c.body) {
			t.Fatalf("Reserve returned a different body for job %d", c.id)
		}
	}
	// Batches honour the option too.
	ids, err := beanspike.PutBatch(e.ctx, q, []beanspike.PutRequest{
		{Tube: "c", Body: compressible, Options: []beanspike.PutOption{beanspike.WithCompression()}},
		{Tube: "c", Body: incompressible, Options: []beanspike.PutOption{beanspike.WithCompression()}},
	})
	ok(t, err, "PutBatch")
	if s := e.statsJob(q, ids[0]); !s.Compressed {
		t.Fatalf("compressible body put in a batch WithCompression: %+v", s)
	}
	if ts := e.statsTube(q, "c"); ts.Compressed != 2 || ts.CompressionSkipped != 2 {
		t.Fatalf("StatsTube after a batch = %+v, want 2 compressed, 2 skipped", ts)
	}
	for i, body := range [][]byte{compressible, incompressible} {
		j := e.reserveID(q, ids[i], "c")
		if !bytes.Equal(j.Body, body) {
			t.Fatalf("batch job %d returned a different body", i)
		}
	}
}

func testBodyOwnership(t *testing.T, e *env) {
	q := e.client()
	for _, opts := range [][]beanspike.PutOption{nil, {beanspike.WithCompression()}} {
		orig := bytes.Repeat([]byte("original body "), 20)
		body := bytes.Clone(orig)
		id := e.put(q, "o", body, opts...)
		for i := range body {
			body[i] = 'X'
		}
		p1, err := q.Peek(e.ctx, id)
		ok(t, err, "Peek")
		p2, err := q.Peek(e.ctx, id)
		ok(t, err, "Peek")
		if !bytes.Equal(p1.Body, orig) {
			t.Fatalf("changing the slice given to Put changed the stored job: %q", p1.Body)
		}
		for i := range p1.Body {
			p1.Body[i] = 'Y'
		}
		if !bytes.Equal(p2.Body, orig) {
			t.Fatalf("two Peeks returned the same body slice")
		}
		j := e.reserveID(q, id, "o")
		if !bytes.Equal(j.Body, orig) {
			t.Fatalf("changing a peeked body changed the stored job: %q", j.Body)
		}
		for i := range j.Body {
			j.Body[i] = 'Z'
		}
		p3, err := q.Peek(e.ctx, id)
		ok(t, err, "Peek")
		if !bytes.Equal(p3.Body, orig) {
			t.Fatalf("changing a reserved body changed the stored job: %q", p3.Body)
		}
		ok(t, q.Delete(e.ctx, id), "Delete")
	}
	// Bodies given to PutBatch, too.
	body := []byte("batch body")
	ids, err := beanspike.PutBatch(e.ctx, q, []beanspike.PutRequest{{Tube: "o", Body: body}})
	ok(t, err, "PutBatch")
	copy(body, "XXXXXXXXXX")
	if p, err := q.Peek(e.ctx, ids[0]); err != nil || string(p.Body) != "batch body" {
		t.Fatalf("changing the slice given to PutBatch changed the stored job: %v, %v", p, err)
	}
}
