package audit

import (
	"encoding/binary"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// On-disk layout (DESIGN.md draws it). The root bucket "audit" holds the file
// format version and the current generation. Everything else lives in one
// generation bucket "g<gen>", which Restore builds beside the current one and
// swaps in with a single transaction.
var (
	rootBucket = []byte("audit")
	keyVersion = []byte("version")
	keyGen     = []byte("gen")

	bEvents    = []byte("ev")   // key(index, seq) -> fsm.EncodeEvent, every event but the latest checkpoints
	bCkptEv    = []byte("cev")  // key(index, seq) -> fsm.EncodeEvent of a partition's latest Checkpointed above the base
	bPartition = []byte("part") // partition 0x00 key -> ""
	bWorker    = []byte("work") // worker 0x00 key -> ""
	bHandoff   = []byte("hand") // handoff(8) key -> ""
	bType      = []byte("type") // type(1) key -> ""
	bTime      = []byte("time") // flipped time(8) key -> ""
	bCkpt      = []byte("ckpt") // partition -> key of its latest Checkpointed above the base (in cev)
	bRefs      = []byte("refs") // key -> {1}: reference records at or below the base index
	bHeld      = []byte("held") // key -> clock(8) event: deletions kept for open snapshots
	bInfo      = []byte("info") // the keys below

	infoBase  = []byte("base")  // fsm snapshot encoding of the base state
	infoIndex = []byte("index") // base index (8)
	infoTail  = []byte("tail")  // events above the base index (8)
	infoRefs  = []byte("refs")  // reference records (8)
	infoClock = []byte("clock") // committed changing transactions (8)

	subBuckets = [][]byte{bEvents, bCkptEv, bPartition, bWorker, bHandoff, bType, bTime, bCkpt, bRefs, bHeld, bInfo}
)

// formatVersion is the on-disk layout version in the root bucket. Version 1
// kept the latest checkpoints in ev with their index entries; 2 keeps them in
// cev, unindexed. Open refuses any other version.
const formatVersion = 2

// keyLen is the length of an event key: raft index (8, big endian) then the
// event's seq within its entry (4, big endian), so keys sort in log order.
const keyLen = 12

func genName(gen uint64) []byte {
	b := make([]byte, 9)
	b[0] = 'g'
	binary.BigEndian.PutUint64(b[1:], gen)
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// evKey returns the event key of (index, seq).
func evKey(idx fsm.RaftIndex, seq uint32) []byte {
	return appendKey(make([]byte, 0, keyLen), idx, seq)
}

func appendKey(b []byte, idx fsm.RaftIndex, seq uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(idx))
	return binary.BigEndian.AppendUint32(b, seq)
}

// splitKey parses an event key: the last keyLen bytes of k, which the caller
// has checked is at least that long (an index key of the expected length, or
// a key parseKey accepted).
func splitKey(k []byte) (fsm.RaftIndex, uint32) {
	k = k[len(k)-keyLen:]
	return fsm.RaftIndex(binary.BigEndian.Uint64(k)), binary.BigEndian.Uint32(k[8:])
}

// parseKey parses a key read from the events bucket, which must be exactly an
// event key.
func parseKey(k []byte) (fsm.RaftIndex, uint32, error) {
	if len(k) != keyLen {
		return 0, 0, fmt.Errorf("%w: event key %x is %d bytes, not %d", ErrCorrupt, k, len(k), keyLen)
	}
	idx, seq := splitKey(k)
	return idx, seq, nil
}

// flipTime maps a signed time onto an unsigned one in the same order.
func flipTime(t int64) uint64 { return uint64(t) ^ (1 << 63) }

func unflipTime(u uint64) int64 { return int64(u ^ (1 << 63)) }

// Prefixes of the secondary indexes. Partition and worker ids cannot contain
// 0x00 (fsm validates them), so the separator makes each prefix unambiguous;
// scans still check the key length.
func partitionPrefix(p fsm.PartitionID) []byte { return append([]byte(p), 0) }
func workerPrefix(w fsm.WorkerID) []byte       { return append([]byte(w), 0) }
func handoffPrefix(h fsm.HandoffID) []byte     { return u64(uint64(h)) }
func typePrefix(t fsm.EventType) []byte        { return []byte{byte(t)} }
func timePrefix(t int64) []byte                { return u64(flipTime(t)) }

// maxKey is the largest event key with index idx.
func maxKey(idx fsm.RaftIndex) []byte { return evKey(idx, math.MaxUint32) }

// indexEntry is one secondary index key of an event.
type indexEntry struct {
	bucket []byte
	key    []byte
}

// indexEntries lists the secondary index keys of ev stored under key.
func indexEntries(ev fsm.Event, key []byte) []indexEntry {
	entry := func(b, prefix []byte) indexEntry {
		return indexEntry{b, append(prefix, key...)}
	}
	ps, ws := ev.Partitions(), ev.Workers()
	out := make([]indexEntry, 0, len(ps)+len(ws)+3)
	for _, p := range ps {
		out = append(out, entry(bPartition, partitionPrefix(p)))
	}
	for _, w := range ws {
		out = append(out, entry(bWorker, workerPrefix(w)))
	}
	if h := ev.Handoff(); h != 0 {
		out = append(out, entry(bHandoff, handoffPrefix(h)))
	}
	out = append(out, entry(bType, typePrefix(ev.Type())), entry(bTime, timePrefix(ev.Time)))
	return out
}

// buckets are the sub-buckets of one generation, opened in one transaction.
type buckets struct {
	gen                                                        *bbolt.Bucket
	events, cev, part, work, hand, typ, time, ckpt, refs, held *bbolt.Bucket
	info                                                       *bbolt.Bucket
}

func (bs *buckets) byName(name []byte) *bbolt.Bucket {
	switch string(name) {
	case string(bPartition):
		return bs.part
	case string(bWorker):
		return bs.work
	case string(bHandoff):
		return bs.hand
	case string(bType):
		return bs.typ
	case string(bTime):
		return bs.time
	}
	return bs.events
}

// currentGen reads the current generation from the root bucket.
func currentGen(tx *bbolt.Tx) (uint64, error) {
	root := tx.Bucket(rootBucket)
	if root == nil {
		return 0, fmt.Errorf("%w: no root bucket", ErrCorrupt)
	}
	v := root.Get(keyGen)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: no generation", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// openCurrent opens the current generation's buckets in tx.
func openCurrent(tx *bbolt.Tx) (*buckets, uint64, error) {
	gen, err := currentGen(tx)
	if err != nil {
		return nil, 0, err
	}
	bs, err := openGen(tx, gen)
	return bs, gen, err
}

// openGen opens generation gen's buckets in tx.
func openGen(tx *bbolt.Tx, gen uint64) (*buckets, error) {
	g := tx.Bucket(genName(gen))
	if g == nil {
		return nil, fmt.Errorf("%w: generation %d missing", ErrCorrupt, gen)
	}
	bs := &buckets{gen: g}
	ptrs := []**bbolt.Bucket{&bs.events, &bs.cev, &bs.part, &bs.work, &bs.hand, &bs.typ, &bs.time, &bs.ckpt, &bs.refs, &bs.held, &bs.info}
	for i, name := range subBuckets {
		*ptrs[i] = g.Bucket(name)
		if *ptrs[i] == nil {
			return nil, fmt.Errorf("%w: generation %d has no bucket %q", ErrCorrupt, gen, name)
		}
	}
	return bs, nil
}

// createGen creates generation gen's buckets, replacing any left over, with
// zero counters (the base state is the caller's).
func createGen(tx *bbolt.Tx, gen uint64) error {
	name := genName(gen)
	if tx.Bucket(name) != nil {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
	}
	g, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	for _, s := range subBuckets {
		if _, err := g.CreateBucket(s); err != nil {
			return err
		}
	}
	info := g.Bucket(bInfo)
	for _, k := range [][]byte{infoIndex, infoTail, infoRefs, infoClock} {
		if err := info.Put(k, u64(0)); err != nil {
			return err
		}
	}
	return nil
}

// getU64 reads a counter, which every generation has from its creation.
func getU64(b *bbolt.Bucket, k []byte) (uint64, error) {
	v := b.Get(k)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %s is %x", ErrCorrupt, k, v)
	}
	return binary.BigEndian.Uint64(v), nil
}
