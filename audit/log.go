package audit

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/batonhq/baton/fsm"
)

// initialMmapSize is bbolt's first mapping: address space only, reserved so a
// growing log rarely remaps (a remap waits for every open read transaction).
const initialMmapSize = 1 << 30

// Log is a durable, indexed audit log in one bbolt file.
//
// Append, Snapshot and Restore must be called from one goroutine (raftnode's FSM
// goroutine). Query, Bounds, LastIndex, Replay, Snap.WriteTo and Snap.Release may
// be called from any goroutine, concurrently with those. Log has no lock: bbolt
// serializes writers and isolates readers, and the three atomics below are
// independent of each other.
type Log struct {
	db  *bbolt.DB
	cfg Config

	// closed is set once by Close.
	closed atomic.Bool
	// snaps counts Snaps taken (FSM goroutine) and not yet released (any
	// goroutine). While it is non-zero, deleted events are kept in the held
	// bucket so that open snapshots still see them.
	snaps atomic.Int64
	// view is the state after the last commit, published by the FSM goroutine
	// and read by anyone. Its fields are never modified.
	view atomic.Pointer[view]
}

// view is an immutable summary of one committed state.
type view struct {
	gen    uint64
	clock  uint64
	base   []byte // fsm snapshot encoding of the base state
	bounds Bounds
}

// Bounds describes what the log retains.
type Bounds struct {
	// First and Last are the raft indexes of the oldest and newest retained
	// events (reference records included); 0 when the log is empty.
	First, Last fsm.RaftIndex
	// Base is the base index: every event at or below it has been folded into
	// the base state. 0 until the first trim.
	Base fsm.RaftIndex
	// Count is the number of retained events, reference records included.
	Count int
	// Refs is the number of reference records: events at or below Base kept
	// because they explain the base state.
	Refs int
}

// Open opens or creates the log at path. An existing file keeps its content.
//
// The file is opened with NoSync: the log is part of the replicated state and is
// rebuilt from the raft snapshot and log (Restore, then Append) after a crash, so
// raftnode removes the file at start and fsync would only slow Append down.
// Open returns the Validate error for a bad cfg and ErrCorrupt for a file it
// cannot read.
func Open(path string, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         time.Second,
		NoSync:          true,
		NoGrowSync:      true,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{db: db, cfg: cfg}
	if err := db.Update(l.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return l, nil
}

// init creates the layout of a new file, or checks an existing one, drops what
// an interrupted Restore or an unreleased snapshot left, and publishes the view.
func (l *Log) init(tx *bbolt.Tx) error {
	root, err := tx.CreateBucketIfNotExists(rootBucket)
	if err != nil {
		return err
	}
	if v := root.Get(keyVersion); v == nil {
		if err := root.Put(keyVersion, u64(formatVersion)); err != nil {
			return err
		}
	} else if n, err := getU64(root, keyVersion); err != nil {
		return fmt.Errorf("%w: unreadable format version %x", ErrCorrupt, v)
	} else if n != formatVersion {
		// Another build's layout (version 1 kept checkpoints among the
		// indexed events): refuse it rather than misread it. raftnode
		// removes the file at start, so this is a tool or test opening an
		// old file.
		return fmt.Errorf("%w: format version %d, this build reads version %d only", ErrCorrupt, n, formatVersion)
	}
	if root.Get(keyGen) == nil {
		if err := createGen(tx, 1); err != nil {
			return err
		}
		if err := root.Put(keyGen, u64(1)); err != nil {
			return err
		}
		w, err := l.writer(tx, false)
		if err != nil {
			return err
		}
		if w.baseBytes, err = emptyBase(l.cfg.FSM); err != nil {
			return err
		}
		if err := w.save(); err != nil {
			return err
		}
	}
	gen, err := currentGen(tx)
	if err != nil {
		return err
	}
	// Drop other generations (an interrupted Restore) and held events (no
	// snapshot survives a restart).
	var stale [][]byte
	if err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if len(name) == 9 && name[0] == 'g' && !bytes.Equal(name, genName(gen)) {
			stale = append(stale, bytes.Clone(name))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, name := range stale {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
	}
	w, err := l.writer(tx, false)
	if err != nil {
		return err
	}
	if err := w.clearHeld(); err != nil {
		return err
	}
	w.baseBytes = bytes.Clone(w.bs.info.Get(infoBase))
	v, err := w.view()
	if err != nil {
		return err
	}
	tx.OnCommit(func() { l.view.Store(v) })
	return nil
}

func emptyBase(cfg fsm.Config) ([]byte, error) {
	s, err := fsm.New(cfg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Close closes the file. It waits for running queries and snapshot chunks, and
// is idempotent; every later call returns ErrClosed.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	return l.db.Close()
}

// Bounds returns what the log retains as of the last commit. It never blocks.
func (l *Log) Bounds() Bounds { return l.view.Load().bounds }

// LastIndex returns the raft index of the newest retained event (0 if none).
// Retention never trims the newest index, so it is the last index appended.
func (l *Log) LastIndex() fsm.RaftIndex { return l.view.Load().bounds.Last }

// Append stores events (the Result.Events of one or more applied entries, in
// order) and their index entries in one transaction, compacts checkpoints, and
// runs retention after every raft index it changed.
//
// It is idempotent: an event whose (index, seq) is already stored, at or below
// the base index, or a checkpoint older than the stored one for its partition,
// is skipped; a batch that changes nothing commits nothing, leaving the file
// byte for byte as it was. It returns ErrConflict if a stored event differs,
// ErrCorrupt if stored data cannot be read, and ErrClosed after Close.
func (l *Log) Append(events []fsm.Event) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	tx, err := l.db.Begin(true)
	if err != nil {
		return l.translate(err)
	}
	defer tx.Rollback()
	w, err := l.writer(tx, l.snaps.Load() > 0)
	if err != nil {
		return err
	}
	if !w.hold {
		if err := w.clearHeld(); err != nil {
			return err
		}
	}
	groupChanged := false
	for i, ev := range events {
		added, err := w.add(ev)
		if err != nil {
			return fmt.Errorf("audit: append %d.%d: %w", ev.Index, ev.Seq, err)
		}
		groupChanged = groupChanged || added
		if groupChanged && (i == len(events)-1 || events[i+1].Index != ev.Index) {
			if err := w.retain(); err != nil {
				return fmt.Errorf("audit: retention after %d: %w", ev.Index, err)
			}
			groupChanged = false
		}
	}
	if !w.dirty {
		return nil // rolled back: nothing was written
	}
	if err := w.save(); err != nil {
		return err
	}
	v, err := w.view()
	if err != nil {
		return err
	}
	tx.OnCommit(func() { l.view.Store(v) })
	return l.translate(tx.Commit())
}

// translate maps bbolt's closed-database errors onto ErrClosed.
func (l *Log) translate(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) || (errors.Is(err, berrors.ErrTxClosed) && l.closed.Load()) {
		return ErrClosed
	}
	return err
}
