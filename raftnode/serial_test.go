package raftnode

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/internal/faultnet"
)

// TestSerialTransport_HeartbeatsReachTheMainLoop: raft installs its
// heartbeat handler on every transport it is given; on Baton's transport a
// heartbeat still arrives on Consumer(), where raft's main loop reads it, and
// the handler is never called. hashicorp's network transport alone (the
// baseline) calls the handler on its connection goroutine instead.
func TestSerialTransport_HeartbeatsReachTheMainLoop(t *testing.T) {
	for _, tc := range []struct {
		name         string
		wrap         func(*raft.NetworkTransport) raft.Transport
		wantFastPath bool
	}{
		{"baton's transport", func(nt *raft.NetworkTransport) raft.Transport { return newSerialTransport(nt) }, false},
		{"baton's transport behind faultnet", func(nt *raft.NetworkTransport) raft.Transport {
			return faultnet.New().Wrap("n1", newSerialTransport(nt))
		}, false},
		{"the tests' HeartbeatFastPath baseline", func(nt *raft.NetworkTransport) raft.Transport {
			return HeartbeatFastPath(newSerialTransport(nt))
		}, true},
		{"hashicorp's network transport", func(nt *raft.NetworkTransport) raft.Transport { return nt }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tcpTransport(t)
			trans := tc.wrap(srv)
			fast := make(chan struct{}, 1)
			trans.SetHeartbeatHandler(func(rpc raft.RPC) {
				fast <- struct{}{}
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			})
			cli := tcpTransport(t)
			sent := make(chan error, 1)
			go func() {
				req := raft.AppendEntriesRequest{
					RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n2"),
						Addr: cli.EncodePeer("n2", cli.LocalAddr())},
					Term: 7,
				}
				var resp raft.AppendEntriesResponse
				sent <- cli.AppendEntries("n1", srv.LocalAddr(), &req, &resp)
			}()
			var onConsume bool
			select {
			case <-fast:
			case rpc := <-trans.Consumer():
				onConsume = true
				if _, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok {
					t.Fatalf("consumer got %T, want the heartbeat", rpc.Command)
				}
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			case <-time.After(10 * time.Second):
				t.Fatal("the heartbeat reached neither the handler nor the consumer")
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			select {
			case <-fast:
				t.Fatal("the heartbeat handler ran as well")
			default:
			}
			if fastPath := !onConsume; fastPath != tc.wantFastPath {
				t.Fatalf("heartbeat handled by the handler on the connection goroutine: %v, want %v", fastPath, tc.wantFastPath)
			}
		})
	}
}

// TestSerialTransport_KeepsOptionalInterfaces: every interface hashicorp/raft
// v1.7.3 detects on a transport by type assertion (pre-vote at NewRaft and at
// each election, Close at shutdown) is still there on Baton's transport, also
// behind the test fault wrapper, and reaches the network transport. (The
// compile-time assertions in serial.go cover the type; this covers the
// calls.)
func TestSerialTransport_KeepsOptionalInterfaces(t *testing.T) {
	srv := tcpTransport(t)
	cli := tcpTransport(t)
	for _, tc := range []struct {
		name  string
		trans raft.Transport
	}{
		{"baton's transport", newSerialTransport(cli)},
		{"baton's transport behind faultnet", faultnet.New().Wrap("n2", newSerialTransport(cli))},
		{"the tests' HeartbeatFastPath baseline", HeartbeatFastPath(newSerialTransport(cli))},
	} {
		trans := tc.trans
		t.Run(tc.name, func(t *testing.T) {
			pv, ok := trans.(raft.WithPreVote)
			if !ok {
				t.Fatal("no raft.WithPreVote: raft would turn pre-vote off")
			}
			if _, ok := trans.(raft.WithClose); !ok {
				t.Fatal("no raft.WithClose: raft would not close the transport at shutdown")
			}
			got := make(chan any, 1)
			go func() {
				rpc := <-srv.Consumer()
				got <- rpc.Command
				rpc.Respond(&raft.RequestPreVoteResponse{Granted: true}, nil)
			}()
			var resp raft.RequestPreVoteResponse
			if err := pv.RequestPreVote("n1", srv.LocalAddr(), &raft.RequestPreVoteRequest{Term: 3}, &resp); err != nil {
				t.Fatal(err)
			}
			if _, ok := (<-got).(*raft.RequestPreVoteRequest); !ok || !resp.Granted {
				t.Fatalf("pre-vote did not go through: granted=%v", resp.Granted)
			}
		})
	}
	closer := newSerialTransport(tcpTransport(t))
	if err := raft.WithClose(closer).Close(); err != nil {
		t.Fatal(err)
	}
	if !closer.IsShutdown() {
		t.Fatal("Close did not shut the network transport down")
	}
}

// TestSerialTransport_RefusesPipelining: raft asks every transport for a
// pipeline to each follower it replicates to; Baton's refuses (raft then
// replicates one AppendEntries at a time), hashicorp's gives one.
func TestSerialTransport_RefusesPipelining(t *testing.T) {
	srv := tcpTransport(t)
	for _, tc := range []struct {
		name  string
		trans raft.Transport
		want  error
	}{
		{"baton's transport", newSerialTransport(tcpTransport(t)), raft.ErrPipelineReplicationNotSupported},
		{"the tests' HeartbeatFastPath baseline", HeartbeatFastPath(newSerialTransport(tcpTransport(t))), raft.ErrPipelineReplicationNotSupported},
		{"hashicorp's network transport", tcpTransport(t), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.trans.AppendEntriesPipeline("n1", srv.LocalAddr())
			if !errors.Is(err, tc.want) {
				t.Fatalf("AppendEntriesPipeline: %v, want %v", err, tc.want)
			}
			if p != nil {
				_ = p.Close()
			}
		})
	}
}

// tcpTransport is a hashicorp network transport on a loopback port, closed at
// cleanup.
func tcpTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	nt, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nt.CloseStreams()
		_ = nt.Close()
	})
	return nt
}
