package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartConnectCreateStream(t *testing.T) {
	WithJS(t, func(nc *nats.Conn, js jetstream.JetStream) {
		if !nc.IsConnected() {
			t.Fatalf("not connected: %v", nc.Status())
		}
		st := CreateStream(t, js, "S", jetstream.LimitsPolicy, "s.>")
		if got := st.CachedInfo().Config; got.Storage != jetstream.FileStorage || !got.AllowDirect {
			t.Fatalf("stream config storage=%v allow_direct=%v, want file storage with direct get", got.Storage, got.AllowDirect)
		}
		if seq := pub(t, js, "s.a"); seq != 1 {
			t.Fatalf("first publish got seq %d", seq)
		}
	})
}

// Restart must keep the port and the store so that a worker's durable
// consumer and its cursor survive a server bounce, and the client must
// reconnect without help.
func TestRestartKeepsStateAndClientsReconnect(t *testing.T) {
	s := Start(t, WithLogs())
	url := s.URL()
	nc, js := Connect(t, url)
	st := CreateStream(t, js, "S", jetstream.WorkQueuePolicy, "s.>")
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "s.a"))
	pub(t, js, "s.a")
	pub(t, js, "s.a")
	ackSync(t, fetchN(t, c, 1)...)

	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	s.Restart(t)
	if s.URL() != url {
		t.Fatalf("URL changed across restart: %s -> %s", url, s.URL())
	}
	select {
	case <-reconnected:
	case <-testCtx(t).Done():
		t.Fatalf("client did not reconnect after restart")
	}

	ci := info(t, c)
	if ci.Delivered.Stream != 1 || ci.AckFloor.Stream != 1 || ci.NumPending != 1 {
		t.Fatalf("consumer state lost across restart: %s", cursor(ci))
	}
	msgs := fetchN(t, c, 1)
	wantSeqs(t, "after restart", seqs(t, msgs), []uint64{2})
	ackSync(t, msgs...)
}
