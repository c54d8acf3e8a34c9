package fsm

import (
	"time"
	"unicode/utf8"
)

// Limits on what a command may carry. They are defined here once and used by
// every check of them: the proposers' check before a command reaches the log
// (Config.CheckCommand), Apply's own check of a committed command, and the
// decoder, which refuses any field longer than its kind allows. A command that
// passes the check therefore always decodes, on every replica.
const (
	// MaxIDLen bounds worker, partition and claim-store node ids, in bytes.
	MaxIDLen = 128
	// MaxRequestIDLen bounds a request id, in bytes.
	MaxRequestIDLen = 128
	// MaxActorLen bounds a command's actor ("worker:<id>", "operator:<name>").
	MaxActorLen = 256
	// MaxCauseLen bounds a command's cause ("move <partition> to <worker>").
	MaxCauseLen = 512
	// MaxReasonLen bounds the reason of a handoff or abort, in bytes.
	MaxReasonLen = 128
	// MaxLabelKeyLen bounds a worker label's key, in bytes.
	MaxLabelKeyLen = 63
	// MaxLabelValueLen bounds a worker label's value, in bytes.
	MaxLabelValueLen = 255
	// MaxSubjectLen bounds one partition subject, in bytes.
	MaxSubjectLen = 255
	// MaxAddrLen bounds a claim-store node's API address, in bytes.
	MaxAddrLen = 256
	// MaxDrainTimeout bounds a handoff's drain timeout. Longer ones are
	// refused rather than clamped: a deadline past it is almost certainly a
	// unit mistake.
	MaxDrainTimeout = 24 * time.Hour

	// maxCodeLen bounds a rejection code recorded in an event.
	maxCodeLen = 64
)

// CheckWorkerID returns an invalid_argument rejection unless id can name a
// worker: 1 to MaxIDLen bytes of ASCII letters, digits, '-', '_' and '.', not
// starting or ending with '.'.
func CheckWorkerID(id WorkerID) error {
	if err := checkWorkerID(id); err != nil {
		return err
	}
	return nil
}

// CheckPartitionID is CheckWorkerID's rule for partition ids.
func CheckPartitionID(id PartitionID) error {
	if err := checkPartitionID(id); err != nil {
		return err
	}
	return nil
}

// CheckNodeID is CheckWorkerID's rule for claim-store node ids.
func CheckNodeID(id string) error {
	if !validID(id) {
		return reject(CodeInvalidArgument, "invalid node id %s: want 1 to %d bytes of letters, digits, '-', '_' and '.'", clip(id), MaxIDLen)
	}
	return nil
}

// CheckRequestID returns an invalid_argument rejection unless id is 1 to
// MaxRequestIDLen bytes of printable ASCII without spaces (0x21 to 0x7e).
func CheckRequestID(id string) error {
	if id == "" || len(id) > MaxRequestIDLen {
		return reject(CodeInvalidArgument, "request id must be 1 to %d bytes", MaxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return reject(CodeInvalidArgument, "request id may hold only printable ASCII without spaces")
		}
	}
	return nil
}

// CheckLabel returns an invalid_argument rejection unless l's key is 1 to
// MaxLabelKeyLen bytes of letters, digits, '-', '_', '.' and '/', and its value
// is at most MaxLabelValueLen bytes of printable UTF-8 (no control characters,
// which would reach operators' terminals).
func CheckLabel(l Label) error {
	if !validLabelKey(l.Key) {
		return reject(CodeInvalidArgument, "invalid label key %s", clip(l.Key))
	}
	if len(l.Value) > MaxLabelValueLen {
		return reject(CodeInvalidArgument, "label %s value longer than %d bytes", l.Key, MaxLabelValueLen)
	}
	if !printable(l.Value) {
		return reject(CodeInvalidArgument, "label %s value holds control characters or invalid UTF-8", l.Key)
	}
	return nil
}

// CheckDrainTimeout returns an invalid_argument rejection unless 0 <= d <=
// MaxDrainTimeout (0 means no deadline).
func CheckDrainTimeout(d time.Duration) error {
	if d < 0 || d > MaxDrainTimeout {
		return reject(CodeInvalidArgument, "drain timeout %s out of range 0 to %s", d, MaxDrainTimeout)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters
// (C0, DEL and C1).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return false
		}
	}
	return true
}
