package aerospike

import (
	"bytes"
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

// An index is a sorted set of hint keys kept in bounded segment records
// behind a directory record, a B-tree of two levels: the directory maps
// each segment's fence (the least key it covers; the first fence is
// empty) to the segment's number, and a segment holds its keys in a
// key-ordered map. A segment that grows past the segment size is split in
// two; one found empty is merged away. See the package doc for the steps
// and what a crash between them leaves.

// dir is a directory as read.
type dir struct {
	ref     ixRef
	gen     uint32
	fences  [][]byte
	segs    []int64
	missing bool  // the index does not exist
	read    int64 // when read (ns, process clock)
}

// missingFresh is how long a directory found missing is taken for
// missing without reading it again (ns).
const missingFresh = int64(5 * time.Millisecond)

// find returns the position of the segment that covers key.
func (d *dir) find(key []byte) int {
	i := sort.Search(len(d.fences), func(i int) bool { return bytes.Compare(d.fences[i], key) > 0 })
	return max(i-1, 0)
}

// pos returns the position of segment seg, or -1.
func (d *dir) pos(seg int64) int {
	return slices.Index(d.segs, seg)
}

var (
	segMapPolicy = as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
	// createSegPolicy creates a segment's map with its order.
	dirMapPolicy = as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
)

// maxDirs bounds the directories a store keeps in memory.
const maxDirs = 1 << 14

// cachedDir returns the directory of r as this process last read it.
func (s *store) cachedDir(r ixRef) *dir {
	s.mu.Lock()
	d := s.dirs[r]
	s.mu.Unlock()
	return d
}

func (s *store) setDir(d *dir) {
	s.mu.Lock()
	if old := s.dirs[d.ref]; old == nil || old.missing || d.missing || old.gen != d.gen || len(old.segs) != len(d.segs) {
		if len(s.dirs) >= maxDirs {
			clear(s.dirs)
		}
		s.dirs[d.ref] = d
	}
	s.mu.Unlock()
}

func (s *store) dropDir(r ixRef) {
	s.mu.Lock()
	delete(s.dirs, r)
	s.mu.Unlock()
}

// dir returns the directory of r: the cached one unless fresh, read
// otherwise. It returns nil when the index does not exist, unless create
// is set, in which case it makes it.
func (q *Queue) dir(ctx context.Context, r ixRef, fresh, create bool) (*dir, error) {
	if !fresh {
		if d := q.s.cachedDir(r); d != nil {
			if !d.missing {
				return d, nil
			}
			if !create && time.Now().UnixNano()-d.read <= missingFresh {
				return nil, nil
			}
		}
	}
	for range 8 {
		d, err := q.readDir(ctx, r)
		if err != nil || d != nil || !create {
			return d, err
		}
		if err := q.createIndex(ctx, r); err != nil {
			return nil, err
		}
	}
	return nil, errUnavailable("index of tube %q keeps changing", r.tube)
}

// readDir reads the directory of r, or nil when it does not exist.
func (q *Queue) readDir(ctx context.Context, r ixRef) (*dir, error) {
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Get(q.readPolicy(ctx), q.s.dirKey(r), binFences)
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			rec, err = nil, nil
		}
		return err
	})
	if err != nil {
		q.s.dropDir(r)
		return nil, err
	}
	if rec == nil {
		q.s.setDir(&dir{ref: r, missing: true, read: time.Now().UnixNano()})
		return nil, nil
	}
	d := parseDir(r, rec)
	q.s.setDir(d)
	return d, nil
}

// parseDir decodes a directory record.
func parseDir(r ixRef, rec *as.Record) *dir {
	d := &dir{ref: r, gen: rec.Generation}
	type fence struct {
		k   []byte
		seg int64
	}
	var fs []fence
	switch m := rec.Bins[binFences].(type) {
	case map[any]any:
		for k, v := range m {
			if seg, ok := toInt(v); ok {
				fs = append(fs, fence{blob(k), seg})
			}
		}
	case []as.MapPair:
		for _, p := range m {
			if seg, ok := toInt(p.Value); ok {
				fs = append(fs, fence{blob(p.Key), seg})
			}
		}
	}
	slices.SortFunc(fs, func(a, b fence) int { return bytes.Compare(a.k, b.k) })
	for _, f := range fs {
		d.fences = append(d.fences, f.k)
		d.segs = append(d.segs, f.seg)
	}
	return d
}

// blob returns the bytes of a map key or value as the client decodes it:
// []byte, a byte array (map keys), or a string.
func blob(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	case nil:
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b
	}
	return nil
}

// createIndex makes the first segment of r and then its directory, so
// that a directory never names a segment that was not made. When another
// client made the directory first, the segment made here is deleted.
func (q *Queue) createIndex(ctx context.Context, r ixRef) error {
	seg := newSegNo()
	if err := q.createSegment(ctx, r, seg, topFence); err != nil {
		return err
	}
	err := q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, nil)
		wp.RecordExistsAction = as.CREATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.dirKey(r),
			as.MapPutOp(dirMapPolicy, binFences, []byte{}, seg))
		if resultCode(err) == types.KEY_EXISTS_ERROR {
			// Another client made it, or an attempt of ours in doubt
			// did: the segment goes only if the directory does not name
			// it.
			if d, err := q.readDir(ctx, r); err != nil {
				return err
			} else if d != nil && d.pos(seg) < 0 {
				q.deleteSegments(r, seg)
			}
			return nil
		}
		return err
	})
	return err
}

// createSegment makes segment seg of r holding keys.
func (q *Queue) createSegment(ctx context.Context, r ixRef, seg int64, hi string) error {
	ops := []*as.Operation{
		as.MapCreateOp(binEntries, as.MapOrder.KEY_ORDERED, nil),
		as.PutOp(as.NewBin(binHi, hi)),
	}
	if p := q.s.cfg.keyPrefix; p != "" {
		ops = append(ops, as.PutOp(as.NewBin(binKeyPrefix, p)))
	}
	return q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, nil)
		wp.RecordExistsAction = as.CREATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.segKey(r, seg), ops...)
		if resultCode(err) == types.KEY_EXISTS_ERROR {
			return nil // an earlier attempt did it
		}
		return err
	})
}

// deleteSegments deletes segment records in the background.
func (q *Queue) deleteSegments(r ixRef, segs ...int64) {
	for _, seg := range segs {
		q.s.later(func(ctx context.Context) {
			_ = q.retry(ctx, func() error {
				_, err := q.s.client.Delete(q.plainWritePolicy(ctx), q.s.segKey(r, seg))
				return err
			})
		})
	}
}

// mapItems returns keys as the items of a map put: hint keys as byte
// arrays, which the client packs as blobs and Go can hash.
func mapItems(kind byte, hs []hint) map[any]any {
	items := make(map[any]any, len(hs))
	for _, h := range hs {
		k := h.key(kind)
		switch len(k) {
		case 16:
			items[[16]byte(k)] = h.ttr
		case 20:
			items[[20]byte(k)] = h.ttr
		}
	}
	return items
}

// newSegNo returns a random segment number.
func newSegNo() int64 { return rand.Int64N(1<<62) + 1 }

// insertRec returns the batch record that adds hints to segment seg of
// d (the caller groups them by segment). It refuses a sealed segment and
// keys at or above the segment's upper fence, and does not create a
// missing segment; it returns the segment's size.
func (q *Queue) insertRec(d *dir, seg int64, hs []hint) *as.BatchWrite {
	var op *as.Operation
	top := hs[0].key(d.ref.kind)
	if len(hs) == 1 {
		op = as.MapPutOp(segMapPolicy, binEntries, top, hs[0].ttr)
	} else {
		for _, h := range hs[1:] {
			if k := h.key(d.ref.kind); bytes.Compare(k, top) > 0 {
				top = k
			}
		}
		op = as.MapPutItemsOp(segMapPolicy, binEntries, mapItems(d.ref.kind, hs))
	}
	p := batchWritePolicy(as.ExpAnd(
		as.ExpNot(as.ExpBinExists(binSealed)),
		as.ExpGreater(as.ExpStringBin(binHi), as.ExpStringVal(string(top))),
	))
	p.RecordExistsAction = as.UPDATE_ONLY
	return as.NewBatchWrite(p, q.s.segKey(d.ref, seg), op)
}

// segGroup is the hints of a call that go into one segment: their
// positions in the call's list.
type segGroup struct {
	d   *dir
	seg int64
	at  []int
}

// groupHints groups hints hs, hint i going into index refs[i], by the
// segment that the directory (made if need be) sends them to, in the
// order the groups first appear.
func (q *Queue) groupHints(ctx context.Context, refs []ixRef, hs []hint) ([]*segGroup, error) {
	type segRef struct {
		r   ixRef
		seg int64
	}
	byRef := map[segRef]*segGroup{}
	dirs := map[ixRef]*dir{}
	var out []*segGroup
	for i, h := range hs {
		r := refs[i]
		d := dirs[r]
		if d == nil {
			var err error
			if d, err = q.dir(ctx, r, false, true); err != nil {
				return nil, err
			}
			dirs[r] = d
		}
		sr := segRef{r, d.segs[d.find(h.key(r.kind))]}
		g := byRef[sr]
		if g == nil {
			g = &segGroup{d: d, seg: sr.seg}
			byRef[sr] = g
			out = append(out, g)
		}
		g.at = append(g.at, i)
	}
	return out, nil
}

// insertGroup returns the batch record that inserts the hints of g.
func (q *Queue) insertGroup(g *segGroup, hs []hint) *as.BatchWrite {
	mine := make([]hint, len(g.at))
	for k, i := range g.at {
		mine[k] = hs[i]
	}
	return q.insertRec(g.d, g.seg, mine)
}

// topFence is the upper fence of the last segment of an index: above
// every key.
var topFence = string(bytes.Repeat([]byte{0xff}, 21))

// inserted handles the result of an insertRec: it starts a split of a
// segment that grew past the segment size. It returns whether the
// insert was applied; when it was not, the caller inserts the hints one
// at a time with insert, which repairs what refused them.
func (q *Queue) inserted(d *dir, seg int64, br *as.BatchRecord) (ok, stale bool) {
	switch br.ResultCode {
	case types.OK:
		n, ok := lastInt(br.Record, binEntries)
		switch {
		case !ok || int(n) <= q.s.cfg.segSize:
		case int(n) > q.s.cfg.segSize*3/2:
			// Far over: split before more goes in, so that the segment
			// stays well within the record size limit; if another split
			// holds the segment's lock, wait for it.
			ctx, cancel := context.WithTimeout(q.s.bgCtx, 2*q.s.cfg.timeout)
			b := backoff{h: &q.s.health}
			for ctx.Err() == nil {
				if locked, _ := q.splitNow(ctx, d.ref, seg, int(n)); !locked {
					break
				}
				if b.wait(ctx, q.stopCh(), nil) != nil || b.n >= 8 {
					break
				}
			}
			cancel()
		default:
			q.split(d.ref, seg, int(n))
		}
		return true, false
	case types.FILTERED_OUT, types.KEY_NOT_FOUND_ERROR:
		return false, true
	}
	return false, false
}

// insert adds one hint to index r, creating the index if need be. A
// segment that refuses the hint is looked at and whatever left it so
// finished: a merge (it is sealed), a split (its fence was lowered), a
// merge that did not raise its fence; then the directory is read again.
func (q *Queue) insert(ctx context.Context, r ixRef, h hint) error {
	key := h.key(r.kind)
	fresh := false
	if err := q.at("insert"); err != nil {
		return err
	}
	b := backoff{h: &q.s.health}
	for attempt := range 16 {
		if attempt >= 4 { // others are changing the index: let them finish
			if err := b.wait(ctx, q.stopCh(), nil); err != nil {
				return err
			}
		}
		d, err := q.dir(ctx, r, fresh, true)
		if err != nil {
			return err
		}
		seg := d.segs[d.find(key)]
		var br *as.BatchRecord
		err = q.retry(ctx, func() error {
			rec := q.insertRec(d, seg, []hint{h})
			q.batch(ctx, []as.BatchRecordIfc{rec})
			br = rec.BatchRec()
			if br.ResultCode != types.OK && transient(br.ResultCode) {
				return batchErr(br)
			}
			return nil
		})
		if err != nil {
			return err
		}
		ok, stale := q.inserted(d, seg, br)
		if ok {
			return nil
		}
		if !stale {
			return interpretError(batchErr(br))
		}
		if br.ResultCode == types.FILTERED_OUT && fresh {
			if err := q.fixSegment(ctx, r, seg, key); err != nil {
				return err
			}
		}
		fresh = true
	}
	return errUnavailable("index of tube %q keeps changing", r.tube)
}

// remove takes hints out of index r, in the background. A hint that a
// split moved meanwhile stays behind as a stale hint, which readers drop.
func (q *Queue) remove(r ixRef, hs ...hint) {
	if len(hs) == 0 {
		return
	}
	q.s.unhint(r, hs)
}

// removeNow takes keys out of index r and waits. Keys that a split
// moved since this process read the directory are looked for again with
// the directory read afresh.
func (q *Queue) removeNow(ctx context.Context, r ixRef, keys [][]byte) error {
	fresh := false
	for range 3 {
		if len(keys) == 0 {
			return nil
		}
		left, err := q.removeFrom(ctx, r, keys, fresh)
		if err != nil {
			return err
		}
		keys, fresh = left, true
	}
	return nil
}

// removeFrom takes keys out of the segments of r that the directory
// (read afresh if fresh) sends them to, and returns those not found.
func (q *Queue) removeFrom(ctx context.Context, r ixRef, keys [][]byte, fresh bool) ([][]byte, error) {
	d, err := q.dir(ctx, r, fresh, false)
	if err != nil || d == nil {
		return nil, err
	}
	bySeg := map[int64][]any{}
	var order []int64
	for _, k := range keys {
		seg := d.segs[d.find(k)]
		if bySeg[seg] == nil {
			order = append(order, seg)
		}
		bySeg[seg] = append(bySeg[seg], as.BytesValue(k))
	}
	recs := make([]as.BatchRecordIfc, len(order))
	for i, seg := range order {
		recs[i] = as.NewBatchWrite(q.s.bwUpdate, q.s.segKey(r, seg),
			as.MapRemoveByKeyListOp(binEntries, bySeg[seg], as.MapReturnType.KEY),
			as.MapSizeOp(binEntries))
	}
	if err := q.batchWrite(ctx, recs); err != nil {
		return nil, err
	}
	var left [][]byte
	for i, rec := range recs {
		br := rec.BatchRec()
		removed := map[string]bool{}
		if br.ResultCode == types.OK {
			rs := results(br.Record.Bins, binEntries)
			if len(rs) > 0 {
				for _, k := range keyList(rs[0]) {
					removed[string(k)] = true
				}
			}
			if n, ok := lastInt(br.Record, binEntries); ok && n == 0 && len(d.segs) > 1 {
				q.merge(r, order[i])
			}
		}
		for _, k := range bySeg[order[i]] {
			if b := []byte(k.(as.BytesValue)); !removed[string(b)] {
				left = append(left, b)
			}
		}
	}
	return left, nil
}

// headKeys decodes a headRec's result.
func headKeys(kind byte, br *as.BatchRecord) []hint {
	if br.ResultCode != types.OK || br.Record == nil {
		return nil
	}
	var hs []hint
	for _, v := range results(br.Record.Bins, binEntries) {
		hs = append(hs, pairList(kind, v)...)
	}
	return hs
}

// pairList decodes the keys and values of a map read as hints, in key
// order.
func pairList(kind byte, v any) []hint {
	var hs []hint
	add := func(k, val any) {
		if h, ok := parseHint(kind, blob(k)); ok {
			h.ttr, _ = toInt(val)
			hs = append(hs, h)
		}
	}
	switch x := v.(type) {
	case []as.MapPair:
		for _, p := range x {
			add(p.Key, p.Value)
		}
	case map[any]any:
		for k, val := range x {
			add(k, val)
		}
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			add(x[i], x[i+1])
		}
	}
	slices.SortFunc(hs, hintLess)
	return hs
}

// keyList decodes a list of map keys.
func keyList(v any) [][]byte {
	var out [][]byte
	switch x := v.(type) {
	case []any:
		for _, k := range x {
			if b := blob(k); b != nil {
				out = append(out, b)
			}
		}
	case map[any]any:
		for k := range x {
			if b := blob(k); b != nil {
				out = append(out, b)
			}
		}
		slices.SortFunc(out, bytes.Compare)
	case []as.MapPair:
		for _, p := range x {
			if b := blob(p.Key); b != nil {
				out = append(out, b)
			}
		}
	}
	return out
}

// head returns up to n of the first hints of index r, reading segments
// in order until it has some or has read maxEmpty empty ones; it merges
// the empty ones away. A missing index has none.
func (q *Queue) head(ctx context.Context, r ixRef, n int) ([]hint, error) {
	fresh := false
	b := backoff{h: &q.s.health}
	for attempt := range 16 {
		if attempt >= 4 {
			if err := b.wait(ctx, q.stopCh(), nil); err != nil {
				return nil, err
			}
		}
		d, err := q.dir(ctx, r, fresh, false)
		if err != nil || d == nil {
			return nil, err
		}
		hs, stale, err := q.headOf(ctx, d, n, fresh)
		if err != nil {
			return nil, err
		}
		if !stale {
			return hs, nil
		}
		fresh = true
	}
	return nil, errUnavailable("index of tube %q keeps changing", r.tube)
}

// headOf reads the first n hints of d's segments, in order. A segment
// found empty is merged away. Going on from one segment to the next, it
// checks that the first's upper fence is the second's fence: if not, a
// split made a segment between them that d does not show, and stale asks
// for the directory to be read again (so does a segment that is gone).
func (q *Queue) headOf(ctx context.Context, d *dir, n int, fresh bool) (hs []hint, stale bool, err error) {
	for i, seg := range d.segs {
		rec := as.NewBatchReadOps(nil, q.s.segKey(d.ref, seg),
			as.MapGetByIndexRangeCountOp(binEntries, 0, n-len(hs), as.MapReturnType.KEY_VALUE),
			as.GetBinOp(binHi))
		if err := q.batchRead(ctx, []as.BatchRecordIfc{rec}); err != nil {
			return nil, false, err
		}
		br := rec.BatchRec()
		if br.ResultCode == types.KEY_NOT_FOUND_ERROR {
			return hs, true, nil
		}
		got := headKeys(d.ref.kind, br)
		if len(got) == 0 && len(d.segs) > 1 {
			q.merge(d.ref, seg)
		}
		hs = append(hs, got...)
		if len(hs) >= n || i+1 == len(d.segs) {
			return hs, false, nil
		}
		if hi, _ := lastValue(br.Record, binHi).(string); hi != string(d.fences[i+1]) && !fresh {
			return hs, true, nil
		}
	}
	return hs, false, nil
}

// --- splits and merges -----------------------------------------------------

// A segment's upper fence (bin hi) is the fence of the segment after it,
// or topFence for the last: inserts at or above it are refused, so a
// client whose directory predates a split cannot put a hint where
// readers would not look for it. A split lowers the fence first, and a
// merge into the segment before raises it last; bin nx names the new
// segment while a split is under way, so that anyone refused by it can
// finish it.

// split divides segment seg of r, which holds n keys, in the background.
func (q *Queue) split(r ixRef, seg int64, n int) {
	if !q.s.startWork(r, seg) {
		return
	}
	q.s.later(func(ctx context.Context) {
		defer q.s.endWork(r, seg)
		_, _ = q.splitNow(ctx, r, seg, n)
	})
}

// lockTTL is how long a split lock holds (ns).
const lockTTL = int64(10e9)

// splitNow splits seg: under the segment's lock it picks the split key
// m, makes the new segment (its upper fence seg's), then lowers seg's
// upper fence to m and names the new segment in it; finishSplit copies
// the hints at or above m into the new segment, adds its fence to the
// directory and takes them out of seg. A crash before the fence was
// lowered leaves an unreferenced segment; after it, a split that the
// next insert refused by seg finishes.
func (q *Queue) splitNow(ctx context.Context, r ixRef, seg int64, n int) (busy bool, err error) {
	d, err := q.dir(ctx, r, true, false)
	if err != nil || d == nil {
		return false, err
	}
	p := d.pos(seg)
	if p < 0 {
		return false, nil
	}
	// The last segment takes appends: keep most of it, so that segments
	// behind the tail stay full.
	keep := n / 2
	if p == len(d.segs)-1 {
		keep = n * 7 / 8
	}
	now := q.nowNs()
	lockFilter := as.ExpAnd(
		as.ExpNot(as.ExpBinExists(binSealed)),
		as.ExpNot(as.ExpBinExists(binNext)),
		as.ExpOr(as.ExpNot(as.ExpBinExists(binLock)), as.ExpLess(as.ExpIntBin(binLock), as.ExpIntVal(now-lockTTL))),
	)
	var m []byte
	var hi string
	err = q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, lockFilter)
		wp.RecordExistsAction = as.UPDATE_ONLY
		rec, err := q.s.client.Operate(wp, q.s.segKey(r, seg),
			as.PutOp(as.NewBin(binLock, now)),
			as.GetBinOp(binHi),
			as.MapGetByIndexOp(binEntries, keep, as.MapReturnType.KEY))
		if err != nil {
			return err
		}
		hi, _ = lastValue(rec, binHi).(string)
		m = nil
		for _, v := range results(rec.Bins, binEntries) {
			if b := blob(v); len(b) > 0 {
				m = b
			}
		}
		return nil
	})
	if err != nil {
		switch resultCode(err) {
		case types.FILTERED_OUT:
			return true, nil // locked, split, sealed or gone: busy
		case types.KEY_NOT_FOUND_ERROR:
			return false, nil
		}
		return false, err
	}
	unlock := func() {
		_ = q.retry(ctx, func() error {
			wp := q.writePolicy(ctx, as.ExpEq(as.ExpIntBin(binLock), as.ExpIntVal(now)))
			wp.RecordExistsAction = as.UPDATE_ONLY
			_, err := q.s.client.Operate(wp, q.s.segKey(r, seg), as.PutOp(as.NewBin(binLock, nil)))
			if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
				return nil
			}
			return err
		})
	}
	if m == nil || bytes.Compare(m, d.fences[p]) <= 0 || string(m) >= hi {
		unlock()
		return false, nil
	}
	if err := q.at("split-new"); err != nil {
		return false, err
	}
	nseg := newSegNo()
	if err := q.createSegment(ctx, r, nseg, hi); err != nil {
		unlock()
		return false, err
	}
	if err := q.at("split-fence"); err != nil {
		return false, err
	}
	err = q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, as.ExpEq(as.ExpIntBin(binLock), as.ExpIntVal(now)))
		wp.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.segKey(r, seg),
			as.PutOp(as.NewBin(binHi, string(m))), as.PutOp(as.NewBin(binNext, nseg)))
		return err
	})
	if err != nil {
		q.deleteSegments(r, nseg)
		if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
			return false, nil // the lock ran out: someone else splits it
		}
		unlock()
		return false, err
	}
	return false, q.finishSplit(ctx, r, seg)
}

// finishSplit finishes a split of seg whose upper fence was lowered: it
// copies the hints at or above the fence into the new segment, adds the
// new segment's fence to the directory, then takes the hints out of seg
// and clears the split. Every step may be done again.
func (q *Queue) finishSplit(ctx context.Context, r ixRef, seg int64) error {
	var hi string
	var nseg int64
	var upper []hint
	err := q.retry(ctx, func() error {
		rec, err := q.s.client.Get(q.readPolicy(ctx), q.s.segKey(r, seg), binHi, binNext)
		if err != nil {
			return err
		}
		hi, _ = rec.Bins[binHi].(string)
		nseg, _ = toInt(rec.Bins[binNext])
		if nseg == 0 {
			return nil
		}
		rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), q.s.segKey(r, seg),
			as.MapGetByKeyRangeOp(binEntries, as.BytesValue([]byte(hi)), nil, as.MapReturnType.KEY_VALUE))
		if err != nil {
			return err
		}
		upper = nil
		for _, v := range results(rec.Bins, binEntries) {
			upper = append(upper, pairList(r.kind, v)...)
		}
		return nil
	})
	if err != nil || nseg == 0 {
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		return err
	}
	if len(upper) > 0 {
		err := q.retry(ctx, func() error {
			wp := q.writePolicy(ctx, nil)
			wp.RecordExistsAction = as.UPDATE_ONLY
			_, err := q.s.client.Operate(wp, q.s.segKey(r, nseg),
				as.MapPutItemsOp(segMapPolicy, binEntries, mapItems(r.kind, upper)))
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := q.at("split-dir"); err != nil {
		return err
	}
	fence := []byte(hi)
	if _, err := q.editDir(ctx, r, func(d *dir) ([]fenceEdit, bool) {
		if d.pos(nseg) >= 0 || d.pos(seg) < 0 {
			return nil, false
		}
		return []fenceEdit{{fence, nseg}}, true
	}); err != nil {
		return err
	}
	if err := q.at("split-trim"); err != nil {
		return err
	}
	return q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, as.ExpEq(as.ExpIntBin(binNext), as.ExpIntVal(nseg)))
		wp.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.segKey(r, seg),
			as.MapRemoveByKeyRangeOp(binEntries, as.BytesValue(fence), nil, as.MapReturnType.NONE),
			as.PutOp(as.NewBin(binNext, nil)),
			as.PutOp(as.NewBin(binLock, nil)))
		if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		return err
	})
}

// fixSegment finishes whatever made segment seg refuse key although a
// fresh directory sends key to it: a merge (it is sealed), a split (it
// names a new segment), or a merge that has yet to raise its upper fence
// to the fence of the segment after it.
func (q *Queue) fixSegment(ctx context.Context, r ixRef, seg int64, key []byte) error {
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Get(q.readPolicy(ctx), q.s.segKey(r, seg), binSealed, binNext, binHi)
		return err
	})
	if err != nil {
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		return err
	}
	if sl, _ := toInt(rec.Bins[binSealed]); sl != 0 {
		return q.finishMergeNow(ctx, r, seg)
	}
	if nx, _ := toInt(rec.Bins[binNext]); nx != 0 {
		return q.finishSplit(ctx, r, seg)
	}
	hi, _ := rec.Bins[binHi].(string)
	d, err := q.dir(ctx, r, true, false)
	if err != nil || d == nil {
		return err
	}
	p := d.pos(seg)
	if p < 0 || (key != nil && d.segs[d.find(key)] != seg) {
		return nil
	}
	want := topFence
	if p+1 < len(d.fences) {
		want = string(d.fences[p+1])
	}
	if want <= hi {
		return nil
	}
	return q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, as.ExpAnd(
			as.ExpNot(as.ExpBinExists(binNext)),
			as.ExpEq(as.ExpStringBin(binHi), as.ExpStringVal(hi))))
		wp.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.segKey(r, seg), as.PutOp(as.NewBin(binHi, want)))
		if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		return err
	})
}

// fenceEdit is a change to a directory: fence now names segment seg, or
// with seg 0 is removed.
type fenceEdit struct {
	fence []byte
	seg   int64
}

// editDir applies the changes that edit returns for the directory of r
// as last read, under a generation check, reading it again and retrying
// when another client changed it meanwhile. edit returns false to make
// no change. The process's copy of the directory is changed the same
// way, so that it need not read the directory again.
func (q *Queue) editDir(ctx context.Context, r ixRef, edit func(*dir) ([]fenceEdit, bool)) (bool, error) {
	for range 16 {
		d, err := q.dir(ctx, r, true, false)
		if err != nil || d == nil {
			return false, err
		}
		edits, ok := edit(d)
		if !ok {
			return false, nil
		}
		ops := make([]*as.Operation, len(edits))
		for i, e := range edits {
			if e.seg == 0 {
				ops[i] = as.MapRemoveByKeyOp(binFences, e.fence, as.MapReturnType.NONE)
			} else {
				ops[i] = as.MapPutOp(dirMapPolicy, binFences, e.fence, e.seg)
			}
		}
		wp := q.writePolicy(ctx, nil)
		wp.RecordExistsAction = as.UPDATE_ONLY
		wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
		wp.Generation = d.gen
		_, err = q.s.client.Operate(wp, q.s.dirKey(r), ops...)
		switch c := resultCode(err); {
		case err == nil:
			q.s.setDir(d.with(edits))
			return true, nil
		case c == types.GENERATION_ERROR || c == types.KEY_NOT_FOUND_ERROR:
			continue
		case transient(c):
			b := backoff{h: &q.s.health, n: 2}
			if werr := b.wait(ctx, q.stopCh(), err); werr != nil {
				return false, werr
			}
		default:
			return false, interpretError(err)
		}
	}
	return false, errUnavailable("index of tube %q keeps changing", r.tube)
}

// with returns a copy of d with edits applied, one generation on.
func (d *dir) with(edits []fenceEdit) *dir {
	m := make(map[string]int64, len(d.fences)+1)
	for i, f := range d.fences {
		m[string(f)] = d.segs[i]
	}
	for _, e := range edits {
		if e.seg == 0 {
			delete(m, string(e.fence))
		} else {
			m[string(e.fence)] = e.seg
		}
	}
	nd := &dir{ref: d.ref, gen: d.gen + 1}
	keys := make([]string, 0, len(m))
	for f := range m {
		keys = append(keys, f)
	}
	slices.Sort(keys)
	for _, f := range keys {
		nd.fences = append(nd.fences, []byte(f))
		nd.segs = append(nd.segs, m[f])
	}
	return nd
}

// merge takes segment seg of r, found empty, out of its index in the
// background.
func (q *Queue) merge(r ixRef, seg int64) {
	if !q.s.startWork(r, seg) {
		return
	}
	q.s.later(func(ctx context.Context) {
		defer q.s.endWork(r, seg)
		_ = q.mergeNow(ctx, r, seg)
	})
}

// mergeNow seals seg if it is empty and no split is under way in it, so
// that it takes no more hints, then finishes the merge.
func (q *Queue) mergeNow(ctx context.Context, r ixRef, seg int64) error {
	d, err := q.dir(ctx, r, false, false)
	if err != nil || d == nil || len(d.segs) < 2 || d.pos(seg) < 0 {
		return err
	}
	filter := as.ExpAnd(
		as.ExpNot(as.ExpBinExists(binSealed)),
		as.ExpNot(as.ExpBinExists(binNext)),
		as.ExpEq(as.ExpMapSize(as.ExpMapBin(binEntries)), as.ExpIntVal(0)),
	)
	err = q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, filter)
		wp.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(wp, q.s.segKey(r, seg), as.PutOp(as.NewBin(binSealed, 1)))
		return err
	})
	if err != nil {
		if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
			return nil // not empty, or gone
		}
		return err
	}
	if err := q.at("merge-sealed"); err != nil {
		return err
	}
	return q.finishMergeNow(ctx, r, seg)
}

// finishMergeNow drops the fence of sealed segment seg from the
// directory, so that the segment before it covers its keys (or, when it
// is the first, the one after it); raises the upper fence of the segment
// before it to seg's; then deletes seg. A sealed segment left alone in
// its directory is replaced by a new empty one.
func (q *Queue) finishMergeNow(ctx context.Context, r ixRef, seg int64) error {
	fresh := int64(0)
	var prev int64
	_, err := q.editDir(ctx, r, func(d *dir) ([]fenceEdit, bool) {
		p := d.pos(seg)
		prev = 0
		if p < 0 {
			return nil, false
		}
		if len(d.segs) == 1 {
			if fresh == 0 {
				fresh = newSegNo()
				if q.createSegment(ctx, r, fresh, topFence) != nil {
					fresh = 0
					return nil, false
				}
			}
			return []fenceEdit{{[]byte{}, fresh}}, true
		}
		ops := []fenceEdit{{d.fences[p], 0}}
		if p == 0 {
			ops = append(ops, fenceEdit{d.fences[1], 0}, fenceEdit{[]byte{}, d.segs[1]})
		} else {
			prev = d.segs[p-1]
		}
		return ops, true
	})
	if err != nil {
		return err
	}
	if err := q.at("merge-unfenced"); err != nil {
		return err
	}
	if prev != 0 {
		if err := q.fixSegment(ctx, r, prev, nil); err != nil {
			return err
		}
	}
	d, err := q.dir(ctx, r, false, false)
	if err != nil {
		return err
	}
	if d == nil || d.pos(seg) < 0 {
		q.deleteSegments(r, seg)
	}
	return nil
}

// segments returns every segment of r, for DeleteTube.
func (q *Queue) segments(ctx context.Context, r ixRef) ([]int64, error) {
	d, err := q.dir(ctx, r, true, false)
	if err != nil || d == nil {
		return nil, err
	}
	return slices.Clone(d.segs), nil
}
