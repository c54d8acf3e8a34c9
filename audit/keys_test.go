package audit

import (
	"bytes"
	"cmp"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// FuzzIndexKeys checks the key encodings every bbolt bucket and every query
// cursor position rely on (keys.go, query.go: evKey/splitKey, flipTime,
// plan.position/cursorAt):
//
//   - an event key decodes to its (index, seq), also behind any index prefix;
//   - keys sort as (index, seq) do, and flipped times as the signed times do;
//   - a cursor's position decodes back to the cursor under an index plan and
//     under the time plan, and positions sort in the query's order.
func FuzzIndexKeys(f *testing.F) {
	f.Add(uint64(0), uint32(0), int64(0), uint64(0), uint32(0), int64(0), []byte("p1"))
	f.Add(uint64(1<<64-1), uint32(1<<32-1), int64(-1<<63), uint64(1), uint32(0), int64(1<<63-1), []byte{})
	f.Add(uint64(255), uint32(256), int64(-1), uint64(256), uint32(255), int64(1), []byte("w\xff"))
	f.Fuzz(func(t *testing.T, i1 uint64, s1 uint32, t1 int64, i2 uint64, s2 uint32, t2 int64, id []byte) {
		c1 := Cursor{Index: fsm.RaftIndex(i1), Seq: s1, Time: t1}
		c2 := Cursor{Index: fsm.RaftIndex(i2), Seq: s2, Time: t2}
		k1, k2 := evKey(c1.Index, c1.Seq), evKey(c2.Index, c2.Seq)
		if len(k1) != keyLen {
			t.Fatalf("key %x has length %d", k1, len(k1))
		}
		prefix := partitionPrefix(fsm.PartitionID(id))
		for _, k := range [][]byte{k1, append(bytes.Clone(prefix), k1...), append(timePrefix(t1), k1...)} {
			if idx, seq := splitKey(k); idx != c1.Index || seq != c1.Seq {
				t.Fatalf("key %x splits into %d.%d, want %d.%d", k, idx, seq, c1.Index, c1.Seq)
			}
		}
		byIndex := cmp.Or(cmp.Compare(i1, i2), cmp.Compare(s1, s2))
		if got := bytes.Compare(k1, k2); got != byIndex {
			t.Fatalf("keys of %v and %v compare %d, want %d", c1, c2, got, byIndex)
		}
		if unflipTime(flipTime(t1)) != t1 {
			t.Fatalf("time %d does not survive the flip", t1)
		}
		if got, want := bytes.Compare(timePrefix(t1), timePrefix(t2)), cmp.Compare(t1, t2); got != want {
			t.Fatalf("times %d and %d compare %d flipped, want %d", t1, t2, got, want)
		}

		untimed := (&Query{Partition: fsm.PartitionID(id)}).plan()
		if len(id) == 0 {
			untimed = (&Query{}).plan()
		}
		timed := (&Query{Since: 1}).plan()
		for _, tc := range []struct {
			p     plan
			want  Cursor
			order int
		}{
			{untimed, Cursor{Index: c1.Index, Seq: c1.Seq}, byIndex},
			{timed, c1, cmp.Or(cmp.Compare(t1, t2), byIndex)},
		} {
			pos := tc.p.position(c1)
			if got := *tc.p.cursorAt(pos); got != tc.want {
				t.Fatalf("plan %q: position %x reads back as %+v, want %+v", tc.p.bucket, pos, got, tc.want)
			}
			if got := bytes.Compare(pos, tc.p.position(c2)); got != tc.order {
				t.Fatalf("plan %q: positions of %v and %v compare %d, want %d", tc.p.bucket, c1, c2, got, tc.order)
			}
		}
	})
}
