package audit

import "errors"

// Sentinel errors. Compare with errors.Is: most are returned wrapped with the
// operation and the index or key concerned.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("audit: closed")

	// ErrInvalidQuery wraps every reason Query refuses a Query value: an
	// inverted index or time range, a negative time, a limit out of range or an
	// unknown event type.
	ErrInvalidQuery = errors.New("audit: invalid query")

	// ErrConflict is returned by Append when an event's (index, seq) is already
	// stored with different content: the replica's history diverged, which the
	// caller must treat as fatal.
	ErrConflict = errors.New("audit: conflicting event")

	// ErrCorrupt is returned when stored data cannot be read back: a missing
	// bucket, an undecodable event or base state, an unknown file format, or a
	// stored history that no longer folds onto the base state.
	ErrCorrupt = errors.New("audit: corrupt log")

	// ErrInvalidSnapshot wraps every reason Restore refuses its input: bad
	// magic, version, framing, checksum, record order or content. The log keeps
	// its previous content.
	ErrInvalidSnapshot = errors.New("audit: invalid snapshot")

	// ErrBelowBase is returned by Snapshot when asked for an index below the
	// base index: the events needed to describe that point were folded away.
	ErrBelowBase = errors.New("audit: snapshot index below the base index")

	// ErrSnapshotStale is returned by Snap.WriteTo when a Restore replaced the
	// log after the Snap was taken; nothing of the new content is written.
	ErrSnapshotStale = errors.New("audit: snapshot outdated by a restore")

	// ErrReleased is returned by Snap.WriteTo after Snap.Release.
	ErrReleased = errors.New("audit: snapshot released")
)
