package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// registrar is what watchRegistration needs of a claim-store node.
type registrar interface {
	ID() string
	APIAddr() string
	IsLeader() bool
	// Leader returns the leader's API address as the replicated state holds it.
	Leader() (id, raftAddr, apiAddr string)
	LeadershipChanged() <-chan struct{}
}

var _ registrar = (*raftnode.Node)(nil)

// registrationWatch bounds how long a new leader may take to find its API
// address in the replicated state, and how often it looks.
type registrationWatch struct {
	// grace is how long after becoming leader the address may be missing
	// before it is an error; raftnode proposes the registration at once and
	// retries every second, each attempt bounded by the apply timeout.
	grace time.Duration
	// poll is how often the state is looked at (no event tells of it).
	poll time.Duration
	// repeat is how often the error is logged again while it lasts.
	repeat time.Duration
}

// registrationProblem says why the state machine would refuse to record node id
// at API address addr (fsm's RegisterNode rule), or nil.
func registrationProblem(id, addr string) error {
	if err := fsm.CheckNodeID(id); err != nil {
		return err
	}
	if addr == "" || len(addr) > fsm.MaxAddrLen {
		return fmt.Errorf("API address of %d bytes: want 1 to %d", len(addr), fsm.MaxAddrLen)
	}
	return nil
}

// watchRegistration makes a failed registration loud. A leader records its API
// address in the replicated state (raftnode proposes fsm.RegisterNode when it
// leads), and followers forward every write and leader read there. If the
// state machine refuses that registration, raftnode logs nothing and every
// follower answers 503 to everything. So each time n becomes leader,
// watchRegistration waits up to w.grace for n's address to appear in the state
// and logs an Error, repeated every w.repeat, for as long as it stays missing.
// It returns when ctx ends.
func watchRegistration(ctx context.Context, log *slog.Logger, n registrar, w registrationWatch) {
	for {
		changed := n.LeadershipChanged() // before IsLeader: a change in between is not missed
		if n.IsLeader() {
			w.whileLeader(ctx, log, n, changed)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// whileLeader watches one term of leadership, until changed is closed or ctx
// ends.
func (w registrationWatch) whileLeader(ctx context.Context, log *slog.Logger, n registrar, changed <-chan struct{}) {
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	since := time.Now()
	var logged time.Time
	for {
		if _, _, addr := n.Leader(); addr == n.APIAddr() {
			if !logged.IsZero() {
				log.Info("this node's API address is registered at last", "id", n.ID(), "api_addr", n.APIAddr())
			}
			return
		}
		if now := time.Now(); now.Sub(since) >= w.grace && (logged.IsZero() || now.Sub(logged) >= w.repeat) {
			logged = now
			cause := registrationProblem(n.ID(), n.APIAddr())
			if cause == nil {
				cause = errors.New("unknown: see the warnings above and the audit log")
			}
			log.Error("this node leads but the replicated state refuses or lacks its API address: "+
				"followers cannot forward requests to it and answer 503 until another node leads",
				"id", n.ID(), "api_addr", n.APIAddr(), "leading_for", now.Sub(since).Round(time.Second), "cause", cause)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			return
		case <-tick.C:
		}
	}
}
