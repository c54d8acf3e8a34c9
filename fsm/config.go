package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the state machine. Every replica of a cluster must run with the
// same Config: the bounds decide which commands are accepted, so replicas with
// different bounds would diverge. Nothing here can change at run time.
type Config struct {
	// MaxPartitions bounds the number of declared partitions. Default 1,000,000.
	MaxPartitions int
	// MaxWorkers bounds the number of workers known (active, leaving or gone with
	// orphaned partitions). Default 10,000.
	MaxWorkers int
	// MaxItems bounds the items of one batch command. Default 10,000.
	MaxItems int
	// MaxSubjects bounds the subjects of one partition. Default 16.
	MaxSubjects int
	// MaxLabels bounds the labels of one worker. Default 16.
	MaxLabels int
	// MaxWeight bounds worker and partition weights. Default 1,000.
	MaxWeight uint32
	// MaxRequestIDs bounds the idempotency table; the oldest entries go first.
	// Default 20,000.
	MaxRequestIDs int
	// RequestIDTTL drops idempotency entries older than this, measured in command
	// (leader) time. Retries must arrive within it. Default 1h.
	RequestIDTTL time.Duration
}

// DefaultConfig returns the bounds Baton ships with.
func DefaultConfig() Config {
	return Config{
		MaxPartitions: 1_000_000,
		MaxWorkers:    10_000,
		MaxItems:      10_000,
		MaxSubjects:   16,
		MaxLabels:     16,
		MaxWeight:     1_000,
		MaxRequestIDs: 20_000,
		RequestIDTTL:  time.Hour,
	}
}

// Validate reports every field out of range, joined.
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("fsm: config %s must be > 0, got %d", name, v))
		}
	}
	positive("MaxPartitions", c.MaxPartitions)
	positive("MaxWorkers", c.MaxWorkers)
	positive("MaxItems", c.MaxItems)
	positive("MaxSubjects", c.MaxSubjects)
	positive("MaxLabels", c.MaxLabels)
	positive("MaxRequestIDs", c.MaxRequestIDs)
	if c.MaxWeight == 0 {
		errs = append(errs, errors.New("fsm: config MaxWeight must be > 0"))
	}
	if c.RequestIDTTL <= 0 {
		errs = append(errs, fmt.Errorf("fsm: config RequestIDTTL must be > 0, got %s", c.RequestIDTTL))
	}
	return errors.Join(errs...)
}
