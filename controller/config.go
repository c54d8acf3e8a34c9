package controller

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/controller/placement"
)

// Config configures the controller. DefaultConfig returns working values;
// Validate checks every field and the relations between them. Nothing here
// changes at run time; operator settings that every node must share (pause,
// pin, cordon) live in the replicated state instead.
type Config struct {
	// SessionTTL: a worker whose heartbeats stop for this long is expired and
	// its partitions are force-committed elsewhere. Default 5s.
	SessionTTL time.Duration
	// HeartbeatInterval is what workers are told to use. Default 1s; the TTL
	// must cover at least 3.
	HeartbeatInterval time.Duration
	// StabilizationWindow: after the set of eligible workers changes, claims and
	// rebalancing wait until it has been stable this long, so that a rolling
	// restart or a burst of joins moves each partition once. Failover (forced
	// commits of a dead worker's partitions) never waits. Default 2s.
	StabilizationWindow time.Duration
	// DrainTimeout is the drain deadline of the handoffs the controller starts:
	// after it the handoff is force-committed from the last checkpoint.
	// Default 30s.
	DrainTimeout time.Duration
	// MaxHandoffs bounds pending handoffs cluster-wide. Default 256.
	MaxHandoffs int
	// MaxHandoffsPerWorker is the window of pending handoffs into or out of
	// one worker that every worker starts with, and the least it narrows to.
	// The window widens by one with each of the worker's handoffs that
	// completes (is active under its new owner) within SlowHandoff, up to
	// MaxHandoffsPerWorkerCeiling, and halves when one takes longer: a
	// worker that keeps up doubles its window every round. Defaults 32 and
	// 256; a ceiling equal to MaxHandoffsPerWorker makes the bound fixed.
	MaxHandoffsPerWorker        int
	MaxHandoffsPerWorkerCeiling int
	// SlowHandoff: a handoff not active under its new owner this long after
	// the controller first saw it narrows its workers' windows. Default 2s.
	SlowHandoff time.Duration
	// Tick is how often the controller looks at time-based duties (session
	// expiry, drain deadlines) when nothing changes. Default 200ms.
	Tick time.Duration
	// BatchSize bounds the items of one proposed command. Default 1000.
	BatchSize int
	// Strategy places partitions. Default placement.Default.
	Strategy placement.Strategy
	// Placement configures the default strategy's load bound.
	Placement placement.Config
	// Logger. Default: discard.
	Logger *slog.Logger
	// Registerer receives the controller's metrics. Default: none.
	Registerer prometheus.Registerer
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		SessionTTL:                  5 * time.Second,
		HeartbeatInterval:           time.Second,
		StabilizationWindow:         2 * time.Second,
		DrainTimeout:                30 * time.Second,
		MaxHandoffs:                 256,
		MaxHandoffsPerWorker:        32,
		MaxHandoffsPerWorkerCeiling: 256,
		SlowHandoff:                 2 * time.Second,
		Tick:                        200 * time.Millisecond,
		BatchSize:                   1000,
		Strategy:                    placement.Default,
		Placement:                   placement.DefaultConfig(),
	}
}

// Validate reports every problem, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("controller: config "+format, args...))
	}
	if c.HeartbeatInterval <= 0 {
		bad("HeartbeatInterval must be > 0, got %s", c.HeartbeatInterval)
	}
	if c.SessionTTL < 3*c.HeartbeatInterval {
		bad("SessionTTL (%s) must cover at least 3 heartbeats (%s)", c.SessionTTL, c.HeartbeatInterval)
	}
	if c.StabilizationWindow < 0 {
		bad("StabilizationWindow must be >= 0, got %s", c.StabilizationWindow)
	}
	if c.DrainTimeout <= c.HeartbeatInterval {
		bad("DrainTimeout (%s) must exceed HeartbeatInterval (%s)", c.DrainTimeout, c.HeartbeatInterval)
	}
	if c.MaxHandoffs < 1 {
		bad("MaxHandoffs must be >= 1, got %d", c.MaxHandoffs)
	}
	if c.MaxHandoffsPerWorker < 1 || c.MaxHandoffsPerWorker > c.MaxHandoffs {
		bad("MaxHandoffsPerWorker must be 1..MaxHandoffs, got %d", c.MaxHandoffsPerWorker)
	}
	if c.MaxHandoffsPerWorkerCeiling < c.MaxHandoffsPerWorker {
		bad("MaxHandoffsPerWorkerCeiling must be >= MaxHandoffsPerWorker (%d), got %d", c.MaxHandoffsPerWorker, c.MaxHandoffsPerWorkerCeiling)
	}
	if c.SlowHandoff <= 0 {
		bad("SlowHandoff must be > 0, got %s", c.SlowHandoff)
	}
	if c.Tick <= 0 {
		bad("Tick must be > 0, got %s", c.Tick)
	}
	if c.BatchSize < 1 || c.BatchSize > 10_000 {
		bad("BatchSize must be 1..10000, got %d", c.BatchSize)
	}
	if c.Strategy == nil {
		bad("Strategy is required")
	}
	if err := c.Placement.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
