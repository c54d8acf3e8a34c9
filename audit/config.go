package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/fsm"
)

// Config bounds the audit log. Every replica must use the same MaxEvents,
// MaxAge and FSM, because retention runs inside Append and must trim at the same
// points everywhere. Nothing here can change at run time.
type Config struct {
	// MaxEvents bounds the events kept above the base index. Retention runs
	// once they exceed MaxEvents by a tenth (the slack, so trims are batched) and
	// folds the oldest whole raft indexes into the base state until at most
	// MaxEvents remain. Reference records (events at or below the base index
	// that explain the base state, about three per partition and one per
	// worker) come on top. The newest raft index is never trimmed. Default
	// 1,000,000; must be > 0.
	MaxEvents int
	// MaxAge bounds the age of retained events, measured against the leader
	// time of the newest event (never the local clock, so all replicas agree).
	// Retention runs once the oldest event above the base index is older than
	// MaxAge plus a tenth, and trims raft indexes older than MaxAge. 0 means no
	// age bound. Default 0: the count bound already bounds the disk, and an
	// age bound makes the history depend on leader clocks; set it (e.g. 720h)
	// where a policy requires forgetting.
	MaxAge time.Duration
	// MaxScan bounds the index entries one Query call visits; a query that hits
	// it returns what it found and a Next cursor. Default 50,000; must be > 0.
	// It only bounds the work per call, so replicas may differ.
	MaxScan int
	// FSM bounds the base state (see fsm.Config); use the state machine's.
	// Default fsm.DefaultConfig().
	FSM fsm.Config
}

// DefaultConfig returns a Config that works as it is.
func DefaultConfig() Config {
	return Config{
		MaxEvents: 1_000_000,
		MaxAge:    0,
		MaxScan:   50_000,
		FSM:       fsm.DefaultConfig(),
	}
}

// Validate reports every field out of range, joined.
func (c Config) Validate() error {
	var errs []error
	if c.MaxEvents <= 0 {
		errs = append(errs, fmt.Errorf("audit: config MaxEvents must be > 0, got %d", c.MaxEvents))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("audit: config MaxAge must be >= 0, got %s", c.MaxAge))
	}
	if c.MaxScan <= 0 {
		errs = append(errs, fmt.Errorf("audit: config MaxScan must be > 0, got %d", c.MaxScan))
	}
	if err := c.FSM.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("audit: config FSM: %w", err))
	}
	return errors.Join(errs...)
}

// countSlack is how far the events above the base index may exceed MaxEvents
// before a trim runs.
func (c Config) countSlack() int { return max(1, c.MaxEvents/10) }

// ageSlack is how far the oldest event may exceed MaxAge before a trim runs.
func (c Config) ageSlack() time.Duration { return c.MaxAge / 10 }
