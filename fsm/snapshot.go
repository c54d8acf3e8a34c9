package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// Snapshot format: an 8-byte magic and a version byte, then length-prefixed
// records (header, workers, partitions, handoffs, request ids), each sorted by id,
// then a zero length and the CRC-32C of everything before it. The encoding is
// canonical: equal states encode to equal bytes (invariant 5).

var snapshotMagic = []byte("BATONFSM")

const (
	snapshotVersion = 1
	maxRecordLen    = 16 << 20

	recHeader    = 1
	recWorker    = 2
	recPartition = 3
	recHandoff   = 4
	recRequest   = 5
	recNode      = 6
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the canonical encoding of the state to w, streaming one
// record at a time.
func (s *State) WriteSnapshot(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	if _, err := bw.Write(snapshotMagic); err != nil {
		return err
	}
	if err := bw.WriteByte(snapshotVersion); err != nil {
		return err
	}
	var e encoder
	put := func() error {
		var n [binary.MaxVarintLen64]byte
		if _, err := bw.Write(n[:binary.PutUvarint(n[:], uint64(len(e.buf)))]); err != nil {
			return err
		}
		_, err := bw.Write(e.buf)
		e.buf = e.buf[:0]
		return err
	}

	e.u8(recHeader)
	e.uvarint(uint64(s.applied))
	e.uvarint(s.term)
	e.uvarint(uint64(s.lastHandoff))
	e.bool(s.paused)
	e.uvarint(uint64(len(s.workers)))
	e.uvarint(uint64(len(s.partitions)))
	e.uvarint(uint64(len(s.handoffs)))
	e.uvarint(uint64(s.requests.len()))
	e.uvarint(uint64(len(s.nodes)))
	if err := put(); err != nil {
		return err
	}
	for _, w := range s.Workers() {
		e.u8(recWorker)
		e.str(string(w.ID))
		e.uvarint(uint64(w.Incarnation))
		e.uvarint(uint64(w.Weight))
		e.uvarint(uint64(len(w.Labels)))
		for _, l := range w.Labels {
			e.str(l.Key)
			e.str(l.Value)
		}
		e.u8(uint8(w.State))
		e.bool(w.Cordoned)
		e.varint(w.JoinedTime)
		if err := put(); err != nil {
			return err
		}
	}
	ids := make([]PartitionID, 0, len(s.partitions))
	for id := range s.partitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := s.partitions[id]
		e.u8(recPartition)
		e.str(string(p.ID))
		e.strs(p.Subjects)
		e.uvarint(uint64(p.Weight))
		e.str(string(p.Owner))
		e.uvarint(uint64(p.Epoch))
		e.u8(uint8(p.Phase))
		e.uvarint(uint64(p.ResumeAfter))
		e.uvarint(uint64(p.Checkpoint))
		e.uvarint(uint64(p.Handoff))
		e.str(string(p.Pinned))
		e.uvarint(uint64(p.DeclaredIndex))
		e.uvarint(uint64(p.OwnerIndex))
		e.uvarint(uint64(p.OwnerIncarnation))
		e.uvarint(uint64(len(p.Lingerers)))
		for _, l := range p.Lingerers {
			e.str(string(l.Worker))
			e.uvarint(uint64(l.Incarnation))
		}
		if err := put(); err != nil {
			return err
		}
	}
	for _, h := range s.Handoffs() {
		e.u8(recHandoff)
		e.uvarint(uint64(h.ID))
		e.str(string(h.Partition))
		e.str(string(h.From))
		e.str(string(h.To))
		e.uvarint(uint64(h.Epoch))
		e.str(h.Reason)
		e.varint(h.Deadline)
		e.uvarint(uint64(h.PreparedIndex))
		e.varint(h.PreparedTime)
		e.bool(h.Drained)
		e.uvarint(uint64(h.ThroughSeq))
		e.varint(h.DrainedTime)
		if err := put(); err != nil {
			return err
		}
	}
	for _, n := range s.Nodes() {
		e.u8(recNode)
		e.str(n.ID)
		e.str(n.APIAddr)
		if err := put(); err != nil {
			return err
		}
	}
	for _, r := range s.requests.entries() {
		e.u8(recRequest)
		e.str(r.ID)
		e.uvarint(uint64(r.Index))
		e.varint(r.Time)
		e.uvarint(r.Hash)
		encodeReject(&e, r.Err)
		e.uvarint(uint64(len(r.Items)))
		for _, it := range r.Items {
			e.uvarint(uint64(it.Item))
			encodeReject(&e, it.Err)
		}
		if err := put(); err != nil {
			return err
		}
	}
	// A zero length ends the records; the checksum of everything up to and
	// including it follows, written straight to w.
	if err := bw.WriteByte(0); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var t [4]byte
	binary.BigEndian.PutUint32(t[:], crc.Sum32())
	_, err := w.Write(t[:])
	return err
}

func encodeReject(e *encoder, r *RejectError) {
	if r == nil {
		e.str("")
		return
	}
	e.str(string(r.Code))
	e.str(r.Msg)
}

func decodeReject(d *decoder) *RejectError {
	code := d.str()
	if code == "" {
		return nil
	}
	return &RejectError{Code: Code(code), Msg: d.str()}
}

// ErrSnapshotInvalid wraps every reason ReadSnapshot refuses its input.
var ErrSnapshotInvalid = errors.New("fsm: invalid snapshot")

// ReadSnapshot reads a snapshot written by WriteSnapshot into a new state bounded
// by cfg. It verifies the checksum and the invariants, so a truncated, corrupted
// or forged snapshot is an error, never a panic or a half-built state.
func ReadSnapshot(r io.Reader, cfg Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := readSnapshot(r, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshotInvalid, err)
	}
	return s, nil
}

func readSnapshot(r io.Reader, cfg Config) (*State, error) {
	sr := newSnapReader(r)
	head, err := sr.take(len(snapshotMagic) + 1)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !bytes.Equal(head[:len(snapshotMagic)], snapshotMagic) {
		return nil, errors.New("bad magic")
	}
	if head[len(snapshotMagic)] != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version %d", ErrUnsupportedVersion, head[len(snapshotMagic)])
	}
	s := newState(cfg)
	var nWorkers, nPartitions, nHandoffs, nRequests, nNodes uint64
	// Partitions arrive sorted by id (the encoding is canonical); they are
	// kept in that order and go into the map once all are read, at its final
	// size. The order also rules out a partition twice, with no lookup.
	var parts []*Partition
	var text []byte // scratch for decodePartition
	sawHeader := false
	for {
		rec, err := sr.next()
		if err != nil {
			return nil, err
		}
		if rec == nil {
			break
		}
		d := decoder{buf: rec}
		kind := d.u8()
		if !sawHeader && kind != recHeader {
			return nil, errors.New("first record is not the header")
		}
		switch kind {
		case recHeader:
			if sawHeader {
				return nil, errors.New("two headers")
			}
			sawHeader = true
			s.applied = RaftIndex(d.uvarint())
			s.term = d.uvarint()
			s.lastHandoff = HandoffID(d.uvarint())
			s.paused = d.bool()
			nWorkers, nPartitions, nHandoffs, nRequests = d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
			nNodes = d.uvarint()
		case recWorker:
			w := &Worker{ID: WorkerID(d.str()), Incarnation: Incarnation(d.uvarint()), Weight: d.u32(),
				Labels: decodeLabels(&d), State: WorkerState(d.u8()), Cordoned: d.bool(), JoinedTime: d.varint()}
			if d.err == nil && s.workers[w.ID] != nil {
				return nil, fmt.Errorf("worker %s twice", w.ID)
			}
			s.workers[w.ID] = w
		case recPartition:
			p := s.decodePartition(&d, &text)
			if d.err == nil && len(parts) > 0 && p.ID <= parts[len(parts)-1].ID {
				return nil, fmt.Errorf("partition %s after %s: twice or out of order", p.ID, parts[len(parts)-1].ID)
			}
			parts = append(parts, p)
		case recHandoff:
			h := &Handoff{ID: HandoffID(d.uvarint()), Partition: PartitionID(d.str()), From: WorkerID(d.str()),
				To: WorkerID(d.str()), Epoch: Epoch(d.uvarint()), Reason: d.str(), Deadline: d.varint(),
				PreparedIndex: RaftIndex(d.uvarint()), PreparedTime: d.varint(), Drained: d.bool(),
				ThroughSeq: StreamSeq(d.uvarint()), DrainedTime: d.varint()}
			if d.err == nil && s.handoffs[h.ID] != nil {
				return nil, fmt.Errorf("handoff %s twice", h.ID)
			}
			s.handoffs[h.ID] = h
		case recNode:
			id, addr := d.str(), d.str()
			if d.err == nil {
				if _, dup := s.nodes[id]; dup || !validID(id) || addr == "" {
					return nil, fmt.Errorf("node record %q invalid or twice", id)
				}
			}
			s.nodes[id] = addr
		case recRequest:
			e := requestEntry{ID: d.str(), Index: RaftIndex(d.uvarint()), Time: d.varint(), Hash: d.uvarint(),
				Err: decodeReject(&d)}
			e.Items = items(&d, 2, func() itemReject { return itemReject{Item: int(d.u32()), Err: decodeReject(&d)} })
			if d.err == nil {
				if _, dup := s.requests.lookup(e.ID); dup || e.ID == "" {
					return nil, fmt.Errorf("request id %q twice or empty", e.ID)
				}
			}
			s.requests.add(e)
		default:
			return nil, fmt.Errorf("record kind %d", kind)
		}
		if err := d.done(); err != nil {
			return nil, err
		}
	}
	if err := sr.trailer(); err != nil {
		return nil, err
	}
	if !sawHeader || uint64(len(s.workers)) != nWorkers || uint64(len(parts)) != nPartitions ||
		uint64(len(s.handoffs)) != nHandoffs || uint64(s.requests.len()) != nRequests || uint64(len(s.nodes)) != nNodes {
		return nil, errors.New("record counts do not match the header")
	}
	if err := s.restorePartitions(parts); err != nil {
		return nil, err
	}
	if err := s.checkRecords(parts); err != nil {
		return nil, err
	}
	return s, nil
}

// decodePartition decodes a partition record. Worker ids are shared with the
// worker records read before (workers precede partitions), so that 100,000
// partitions on 100 workers hold 100 owner strings, not 100,000.
func (s *State) decodePartition(d *decoder, text *[]byte) *Partition {
	var p *Partition
	id := d.bytes(maxStringLen)
	if n := d.count(1); n == 1 {
		// The usual partition has one subject: the partition and its
		// subject list share one allocation, its id and subject another.
		sub := d.bytes(maxStringLen)
		b := &partitionBlock{}
		*text = append(append((*text)[:0], id...), sub...)
		all := string(*text)
		b.subjects[0] = all[len(id):]
		p = &b.p
		p.ID, p.Subjects = PartitionID(all[:len(id)]), b.subjects[:]
	} else {
		p = &Partition{ID: PartitionID(id)}
		if n > 0 {
			p.Subjects = make([]string, n)
			for i := range p.Subjects {
				p.Subjects[i] = d.str()
			}
		}
	}
	p.Weight, p.Owner = d.u32(), s.workerRef(d)
	p.Epoch, p.Phase, p.ResumeAfter = Epoch(d.uvarint()), Phase(d.u8()), StreamSeq(d.uvarint())
	p.Checkpoint, p.Handoff, p.Pinned = StreamSeq(d.uvarint()), HandoffID(d.uvarint()), s.workerRef(d)
	p.DeclaredIndex, p.OwnerIndex = RaftIndex(d.uvarint()), RaftIndex(d.uvarint())
	p.OwnerIncarnation = Incarnation(d.uvarint())
	p.Lingerers = items(d, 2, func() Lingerer { return Lingerer{Worker: s.workerRef(d), Incarnation: Incarnation(d.uvarint())} })
	return p
}

// partitionBlock is a partition with room for one subject.
type partitionBlock struct {
	p        Partition
	subjects [1]string
}

// workerRef decodes a worker id, returning the known worker's own string when
// there is one.
func (s *State) workerRef(d *decoder) WorkerID {
	b := d.bytes(maxStringLen)
	if len(b) == 0 {
		return ""
	}
	if w := s.workers[WorkerID(b)]; w != nil {
		return w.ID
	}
	return WorkerID(b)
}

// restorePartitions fills the partitions map, sized once, and derives the
// owned, lingering and subject indexes from parts, sorted by id.
func (s *State) restorePartitions(parts []*Partition) error {
	s.partitions = make(map[PartitionID]*Partition, len(parts))
	owners := make(map[WorkerID]int)
	for _, p := range parts {
		if p.Owner != "" {
			owners[p.Owner]++
		}
	}
	for w, n := range owners {
		s.owned[w] = make([]*Partition, 0, n)
	}
	for _, p := range parts {
		s.partitions[p.ID] = p
		for _, sub := range p.Subjects {
			if !validSubject(sub) {
				return fmt.Errorf("partition %s: invalid subject %q", p.ID, sub)
			}
		}
		for i, sub := range p.Subjects {
			if !s.subjects.addNew(sub, p.ID) {
				other, _ := s.subjects.Overlap(sub)
				if other == p.ID {
					// Its own earlier subject: name that, as the check of
					// a declaration does.
					return fmt.Errorf("partition %s: subject %q overlaps another of its subjects %v", p.ID, sub, p.Subjects[:i])
				}
				return fmt.Errorf("partition %s: subject %q overlaps %s", p.ID, sub, other)
			}
		}
		if p.Owner != "" {
			p.ownedAt = int32(len(s.owned[p.Owner]))
			s.owned[p.Owner] = append(s.owned[p.Owner], p)
		}
		if len(p.Lingerers) > maxLingerers {
			return fmt.Errorf("partition %s: %d lingerers", p.ID, len(p.Lingerers))
		}
		if len(p.Lingerers) > 0 {
			ls := p.Lingerers
			p.Lingerers = nil
			s.setLingerers(p, ls)
		}
	}
	return nil
}

// Clone returns a deep copy, made by a snapshot round trip so that it is exactly
// what a replica restoring this state would hold.
func (s *State) Clone() *State {
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		panic(fmt.Sprintf("fsm: clone: %v", err)) // writing to memory cannot fail
	}
	c, err := ReadSnapshot(&buf, s.cfg)
	if err != nil {
		panic(fmt.Sprintf("fsm: clone of a state that breaks its invariants: %v", err))
	}
	return c
}

func decodeLabels(d *decoder) []Label {
	return items(d, 2, func() Label { return Label{Key: d.str(), Value: d.str()} })
}
