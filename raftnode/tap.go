package raftnode

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// tap is the outermost raft transport of a node: it passes everything through
// and watches two things on the way.
//
//   - Outgoing AppendEntries (heartbeats included, which never take the
//     pipeline): when a voter accepts one, the lease learns when that request
//     was sent. The send time is taken here, before the request leaves, so a
//     response that arrives late (after a freeze, say) dates the acceptance
//     by the old send, never by its arrival.
//   - Incoming AppendEntries: the first leader commit index heard after start
//     is the catch-up target of a restarted node (catchup.go).
//
// Once the node stops (done closed), incoming RPCs are answered with
// ErrShutdown instead of being queued for a raft that no longer reads them:
// a peer's RPC fails at once instead of waiting out the transport's 10 s
// time-out, and two nodes stopping together, each with an RPC to the other
// in flight, do not wait for each other.
//
// Pipelined AppendEntries pass unwatched: heartbeats alone keep the lease
// fresh, and counting fewer acceptances only shortens it.
type tap struct {
	raft.Transport
	lease *lease
	catch *catchUp

	in       chan raft.RPC
	done     <-chan struct{} // the node's: closed when it stops
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// tapPreVote is tap over a transport that has pre-vote: raft turns pre-vote
// off for a transport without the method, so the method exists exactly when
// the wrapped transport has it.
type tapPreVote struct{ *tap }

var (
	_ raft.WithClose   = (*tap)(nil)
	_ raft.WithPreVote = tapPreVote{}
)

// newTap wraps t and starts the goroutine that hands incoming RPCs on to raft
// until done is closed; Close stops it.
func newTap(t raft.Transport, l *lease, c *catchUp, done <-chan struct{}) (raft.Transport, *tap) {
	tp := &tap{Transport: t, lease: l, catch: c, in: make(chan raft.RPC), done: done, stop: make(chan struct{})}
	tp.wg.Add(1)
	go tp.relay()
	if _, ok := t.(raft.WithPreVote); ok {
		return tapPreVote{tp}, tp
	}
	return tp, tp
}

// relay hands every incoming RPC to raft, noting the commit index of incoming
// AppendEntries. The channel is unbuffered, as the network transport's own.
func (t *tap) relay() {
	defer t.wg.Done()
	src := t.Transport.Consumer()
	for {
		select {
		case rpc := <-src:
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				t.catch.heard(req.LeaderCommitIndex)
			}
			select {
			case t.in <- rpc:
			case <-t.done:
				rpc.Respond(nil, ErrShutdown)
			case <-t.stop:
				return
			}
		case <-t.stop:
			return
		}
	}
}

// Consumer implements raft.Transport.
func (t *tap) Consumer() <-chan raft.RPC { return t.in }

// AppendEntries implements raft.Transport.
func (t *tap) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := time.Now()
	err := t.Transport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Success && resp.Term == args.Term {
		t.lease.accepted(id, args.Term, sent)
	}
	return err
}

// Close stops the relay and closes the wrapped transport. It is idempotent;
// raft calls it at shutdown.
func (t *tap) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	t.wg.Wait()
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// RequestPreVote implements raft.WithPreVote.
func (t tapPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}
