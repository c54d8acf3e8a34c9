package testcluster

import "go.uber.org/goleak"

// LeakOptions are the goleak options for packages that run raft nodes.
//
// hashicorp/raft 1.7.3 never resolves a future that is still queued in one of
// its buffered channels (applyCh with BatchApplyCh, verifyCh, fsmMutateCh) when
// it shuts down: nobody responds to it and its ShutdownCh is unset. raftnode
// waits on futures from a goroutine so that a context can bound the wait; for
// such a future that goroutine stays blocked in deferError.Error forever. It
// holds nothing but the future. Every other goroutine must end.
func LeakOptions() []goleak.Option {
	return []goleak.Option{goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error")}
}
