package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// Query page limits.
const (
	// DefaultLimit is the page size when Query.Limit is 0.
	DefaultLimit = 100
	// MaxLimit is the largest page Query accepts.
	MaxLimit = 1000
)

// Query selects events. Every set field must match; zero fields match anything.
type Query struct {
	// FromIndex and ToIndex bound the raft index, inclusive; 0 leaves that end
	// open.
	FromIndex, ToIndex fsm.RaftIndex
	// Partition, Worker and Handoff select events that concern them (see
	// fsm.Event.Partitions, Workers and Handoff).
	Partition fsm.PartitionID
	Worker    fsm.WorkerID
	Handoff   fsm.HandoffID
	// Types selects events of any of these types; empty means all.
	Types []fsm.EventType
	// Since and Until bound the leader time (Unix nanoseconds), inclusive; 0
	// leaves that end open.
	Since, Until int64
	// After continues a previous page: pass the Next of that page, with the
	// same query. Exclusive.
	After *Cursor
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Desc returns the newest events first.
	Desc bool
}

// Cursor is a position in a query's order, as returned in Page.Next.
type Cursor struct {
	Index fsm.RaftIndex
	Seq   uint32
	// Time is the leader time at the position; only time-ordered queries use it.
	Time int64
}

// Page is one page of query results.
type Page struct {
	// Events are the matching events in the query's order.
	Events []fsm.Event
	// Next continues the query (set it as Query.After); nil when the query has
	// no more results. A page may be short, even empty, with a Next: the call
	// visited its MaxScan index entries first.
	Next *Cursor
}

// plan is how a query is served: one index bucket scanned between lo and hi
// (inclusive). Keys are prefix [time(8)] eventkey; timed marks the time index.
type plan struct {
	bucket []byte
	prefix []byte
	timed  bool
	lo, hi []byte
}

// validate checks q and fills in the default limit.
func (q *Query) validate() error {
	var errs []error
	if q.Limit < 0 || q.Limit > MaxLimit {
		errs = append(errs, fmt.Errorf("limit %d not in [0, %d]", q.Limit, MaxLimit))
	}
	if q.ToIndex != 0 && q.FromIndex > q.ToIndex {
		errs = append(errs, fmt.Errorf("from_index %d above to_index %d", q.FromIndex, q.ToIndex))
	}
	if q.Since < 0 || q.Until < 0 {
		errs = append(errs, fmt.Errorf("negative time bound (since %d, until %d)", q.Since, q.Until))
	}
	if q.Until != 0 && q.Since > q.Until {
		errs = append(errs, fmt.Errorf("since %d after until %d", q.Since, q.Until))
	}
	for _, t := range q.Types {
		if !slices.Contains(fsm.EventTypes(), t) {
			errs = append(errs, fmt.Errorf("unknown event type %d", t))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	return nil
}

// plan picks the most selective index: handoff, partition, worker, a single
// type, the time range, else the primary (index-ordered) bucket.
func (q *Query) plan() plan {
	from, to := q.FromIndex, q.ToIndex
	if to == 0 {
		to = math.MaxUint64
	}
	byPrefix := func(bucket, prefix []byte) plan {
		return plan{bucket: bucket, prefix: prefix,
			lo: append(bytes.Clone(prefix), evKey(from, 0)...),
			hi: append(bytes.Clone(prefix), maxKey(to)...)}
	}
	switch {
	case q.Handoff != 0:
		return byPrefix(bHandoff, handoffPrefix(q.Handoff))
	case q.Partition != "":
		return byPrefix(bPartition, partitionPrefix(q.Partition))
	case q.Worker != "":
		return byPrefix(bWorker, workerPrefix(q.Worker))
	case len(slices.Compact(slices.Sorted(slices.Values(q.Types)))) == 1:
		return byPrefix(bType, typePrefix(q.Types[0]))
	case q.Since != 0 || q.Until != 0:
		since, until := q.Since, q.Until
		if since == 0 {
			since = math.MinInt64
		}
		if until == 0 {
			until = math.MaxInt64
		}
		return plan{bucket: bTime, timed: true,
			lo: append(timePrefix(since), evKey(0, 0)...),
			hi: append(timePrefix(until), maxKey(math.MaxUint64)...)}
	}
	return byPrefix(bEvents, nil)
}

// position is the index key a cursor stands for under plan p.
func (p plan) position(c Cursor) []byte {
	if p.timed {
		return append(timePrefix(c.Time), evKey(c.Index, c.Seq)...)
	}
	return append(bytes.Clone(p.prefix), evKey(c.Index, c.Seq)...)
}

// cursorAt is the cursor for index key k under plan p.
func (p plan) cursorAt(k []byte) *Cursor {
	idx, seq := splitKey(k)
	c := &Cursor{Index: idx, Seq: seq}
	if p.timed {
		c.Time = unflipTime(binary.BigEndian.Uint64(k))
	}
	return c
}

// matches applies every filter of q to ev.
func (q *Query) matches(ev fsm.Event) bool {
	switch {
	case q.FromIndex != 0 && ev.Index < q.FromIndex, q.ToIndex != 0 && ev.Index > q.ToIndex:
		return false
	case q.Since != 0 && ev.Time < q.Since, q.Until != 0 && ev.Time > q.Until:
		return false
	case q.Handoff != 0 && ev.Handoff() != q.Handoff:
		return false
	case q.Partition != "" && !slices.Contains(ev.Partitions(), q.Partition):
		return false
	case q.Worker != "" && !slices.Contains(ev.Workers(), q.Worker):
		return false
	case len(q.Types) > 0 && !slices.Contains(q.Types, ev.Type()):
		return false
	}
	return true
}

// Query returns one page of the events that match q.
//
// Results are in (index, seq) order, newest first with Desc, except for queries
// whose only selective filter is a time range (no Handoff, Partition, Worker or
// single Type): those are served by the time index and ordered by (time,
// index, seq). Leader time normally grows with the index, so the orders agree
// unless a new leader's clock was behind the old one's.
//
// Each call is one short read transaction that visits at most Config.MaxScan
// index entries, so queries never scan the whole log and never block Append.
// It returns an error wrapping ErrInvalidQuery for a bad q, ErrCorrupt, the
// context's error, or ErrClosed.
func (l *Log) Query(ctx context.Context, q Query) (Page, error) {
	if l.closed.Load() {
		return Page{}, ErrClosed
	}
	if err := q.validate(); err != nil {
		return Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	var page Page
	err := l.db.View(func(tx *bbolt.Tx) error {
		bs, _, err := openCurrent(tx)
		if err != nil {
			return err
		}
		page, err = l.scan(ctx, bs, &q)
		return err
	})
	if err != nil {
		return Page{}, l.translate(err)
	}
	return page, nil
}

// source is one key-ordered stream a scan visits, in the query's direction:
// the entries of the plan's index bucket, or the checkpoint records the plan
// covers (which have no index entries), both as keys of the plan's bucket.
type source struct {
	// k is the current entry's key under the plan, nil at the end of the
	// range; v is the event if the source holds it (nil: fetch it from the
	// events bucket).
	k, v []byte
	next func() (k, v []byte)
	// ckpt: the entries are checkpoint records.
	ckpt bool
}

func (s *source) advance() { s.k, s.v = s.next() }

// indexSource visits the plan's bucket (an index, or the events bucket for
// the primary plan) from the query's start position to the end of its range.
func (p plan) indexSource(b *bbolt.Bucket, q *Query) *source {
	c := b.Cursor()
	holdsEvents := bytes.Equal(p.bucket, bEvents) || bytes.Equal(p.bucket, bCkptEv)
	clip := func(k, v []byte) ([]byte, []byte) {
		if k == nil || bytes.Compare(k, p.lo) < 0 || bytes.Compare(k, p.hi) > 0 {
			return nil, nil
		}
		if !holdsEvents {
			v = nil
		}
		return k, v
	}
	step := c.Next
	if q.Desc {
		step = c.Prev
	}
	s := &source{next: func() ([]byte, []byte) { return clip(step()) }}
	s.k, s.v = clip(p.start(c, q))
	return s
}

// ckptSource visits the checkpoint records the plan covers, in its order:
// none for a handoff plan or a type plan of another type; the partition's one
// record for a partition plan; the records in key order, straight from the
// cev bucket, for the primary plan and a checkpoint type plan; and for worker
// and time plans a sorted list of the matching records, built by reading
// every record (queries are off the hot path; the partitions bound the
// records).
func (p plan) ckptSource(bs *buckets, q *Query) (*source, error) {
	none := &source{next: func() ([]byte, []byte) { return nil, nil }, ckpt: true}
	switch {
	case bytes.Equal(p.bucket, bHandoff):
		return none, nil
	case bytes.Equal(p.bucket, bType) && !bytes.Equal(p.prefix, typePrefix(fsm.EvCheckpointed)):
		return none, nil
	case bytes.Equal(p.bucket, bEvents), bytes.Equal(p.bucket, bType):
		return p.cevSource(bs.cev, q), nil
	}
	var recs []ckptRec
	if bytes.Equal(p.bucket, bPartition) {
		r, ok, err := checkpointOf(bs, q.Partition)
		if err != nil || !ok {
			return none, err
		}
		recs = append(recs, r)
	} else if err := bs.cev.ForEach(func(k, v []byte) error {
		ev, err := decodeCheckpoint(k, v)
		if err != nil {
			return err
		}
		if p.timed || slices.Contains(ev.Workers(), q.Worker) {
			recs = append(recs, ckptRec{ev: ev, v: v})
		}
		return nil
	}); err != nil {
		return nil, err
	}
	items := make([]ckptRec, 0, len(recs))
	for _, r := range recs {
		key := evKey(r.ev.Index, r.ev.Seq)
		if p.timed {
			r.k = append(timePrefix(r.ev.Time), key...)
		} else {
			r.k = append(bytes.Clone(p.prefix), key...)
		}
		if bytes.Compare(r.k, p.lo) >= 0 && bytes.Compare(r.k, p.hi) <= 0 {
			items = append(items, r)
		}
	}
	slices.SortFunc(items, func(a, b ckptRec) int { return bytes.Compare(a.k, b.k) })
	return p.listSource(items, q), nil
}

// ckptRec is a checkpoint record under a plan's key.
type ckptRec struct {
	k, v []byte
	ev   fsm.Event
}

// listSource visits items (sorted, within the plan's range) from the query's
// start position: the first key after q.After (or the first) ascending, the
// last key before it (or the last) descending.
func (p plan) listSource(items []ckptRec, q *Query) *source {
	var i, step int
	switch {
	case !q.Desc && q.After != nil:
		pos := p.position(*q.After)
		i, step = sort.Search(len(items), func(i int) bool { return bytes.Compare(items[i].k, pos) > 0 }), 1
	case !q.Desc:
		i, step = 0, 1
	case q.After != nil:
		pos := p.position(*q.After)
		i, step = sort.Search(len(items), func(i int) bool { return bytes.Compare(items[i].k, pos) >= 0 })-1, -1
	default:
		i, step = len(items)-1, -1
	}
	at := func() ([]byte, []byte) {
		if i < 0 || i >= len(items) {
			return nil, nil
		}
		return items[i].k, items[i].v
	}
	s := &source{ckpt: true, next: func() ([]byte, []byte) { i += step; return at() }}
	s.k, s.v = at()
	return s
}

// cevSource visits the cev bucket for the primary plan or the checkpoint type
// plan: cev keys are event keys, the plan's keys are the plan's prefix and the
// event key, in the same order.
func (p plan) cevSource(b *bbolt.Bucket, q *Query) *source {
	n := len(p.prefix)
	bare := plan{bucket: bCkptEv, lo: p.lo[n:], hi: p.hi[n:]}
	inner := bare.indexSource(b, q)
	wrap := func(k, v []byte) ([]byte, []byte) {
		if k == nil || n == 0 {
			return k, v
		}
		return append(bytes.Clone(p.prefix), k...), v
	}
	s := &source{ckpt: true, next: func() ([]byte, []byte) { inner.advance(); return wrap(inner.k, inner.v) }}
	s.k, s.v = wrap(inner.k, inner.v)
	return s
}

// checkpointOf reads partition p's checkpoint record, if it has one.
func checkpointOf(bs *buckets, p fsm.PartitionID) (ckptRec, bool, error) {
	key := bs.ckpt.Get([]byte(p))
	if key == nil {
		return ckptRec{}, false, nil
	}
	if len(key) != keyLen {
		return ckptRec{}, false, fmt.Errorf("%w: checkpoint of %s points at %x", ErrCorrupt, p, key)
	}
	v := bs.cev.Get(key)
	if v == nil {
		return ckptRec{}, false, fmt.Errorf("%w: checkpoint of %s points at %x, which is not stored", ErrCorrupt, p, key)
	}
	ev, err := decodeCheckpoint(key, v)
	if err != nil {
		return ckptRec{}, false, err
	}
	if got := ev.Body.(fsm.Checkpointed).Partition; got != p {
		return ckptRec{}, false, fmt.Errorf("%w: checkpoint of %s points at one of %s", ErrCorrupt, p, got)
	}
	return ckptRec{ev: ev, v: v}, true, nil
}

// scan visits the plan's index entries and the checkpoint records it covers,
// merged in the plan's order, and collects the matching events.
func (l *Log) scan(ctx context.Context, bs *buckets, q *Query) (Page, error) {
	p := q.plan()
	a := p.indexSource(bs.byName(p.bucket), q)
	b, err := p.ckptSource(bs, q)
	if err != nil {
		return Page{}, err
	}
	var page Page
	for scanned := 0; ; {
		src := a
		switch {
		case a.k == nil && b.k == nil:
			return page, nil
		case a.k == nil:
			src = b
		case b.k != nil:
			order := bytes.Compare(b.k, a.k)
			if order == 0 {
				return Page{}, fmt.Errorf("%w: %x is both an index entry and a checkpoint record", ErrCorrupt, a.k)
			}
			if (order < 0) != q.Desc {
				src = b
			}
		}
		k, v := src.k, src.v
		src.advance()
		scanned++
		if scanned%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Page{}, err
			}
		}
		if len(k) != len(p.prefix)+keyLen+8*boolInt(p.timed) {
			continue // not this prefix's entry (defensive: ids cannot hold 0x00)
		}
		key := k[len(k)-keyLen:]
		if v == nil {
			if v = bs.events.Get(key); v == nil {
				return Page{}, fmt.Errorf("%w: index %q entry %x has no event", ErrCorrupt, p.bucket, k)
			}
		}
		decode := decodeStored
		if src.ckpt {
			decode = decodeCheckpoint
		}
		ev, err := decode(key, v)
		if err != nil {
			return Page{}, err
		}
		if q.matches(ev) {
			page.Events = append(page.Events, ev)
		}
		if len(page.Events) == q.Limit || scanned >= l.cfg.MaxScan {
			if a.k != nil || b.k != nil {
				page.Next = p.cursorAt(k)
			}
			return page, nil
		}
	}
}

// start positions c at the first entry to visit: the start of the range, or
// the entry after q.After in the query's direction.
func (p plan) start(c *bbolt.Cursor, q *Query) ([]byte, []byte) {
	if !q.Desc {
		from := p.lo
		if q.After != nil {
			if pos := p.position(*q.After); bytes.Compare(pos, from) >= 0 {
				k, v := c.Seek(pos)
				if bytes.Equal(k, pos) {
					k, v = c.Next()
				}
				return k, v
			}
		}
		return c.Seek(from)
	}
	to, exclusive := p.hi, false
	if q.After != nil {
		if pos := p.position(*q.After); bytes.Compare(pos, to) <= 0 {
			to, exclusive = pos, true
		}
	}
	k, v := c.Seek(to) // the first key >= to
	switch {
	case k == nil:
		k, v = c.Last()
	case bytes.Compare(k, to) > 0 || exclusive:
		k, v = c.Prev()
	}
	return k, v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
