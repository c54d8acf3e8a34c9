package client_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestFailover_LeaderKilledMidSequence: a client that knows every node carries
// on through the leader's death: the calls after it land on the new leader
// (directly or forwarded) without the caller doing anything, and each write
// is applied once.
func TestFailover_LeaderKilledMidSequence(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	leader := c.Leader(t)
	cl := newClient(t, urlsFrom(c, indexOfNode(c, leader)))
	ctx := ctxT(t)

	reg, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "declare")(cl.Declare(ctx, specs("p", 3)))
	mustOK(t, "cordon")(cl.Cordon(ctx, "w1", true))

	c.Kill(t, indexOfNode(c, leader))

	mustOK(t, "uncordon after the kill")(cl.Cordon(ctx, "w1", false))
	mustOK(t, "cordon after the kill")(cl.Cordon(ctx, "w1", true))
	if ttl, err := cl.Heartbeat(ctx, "w1", reg.Incarnation); err != nil || ttl <= 0 {
		t.Fatalf("heartbeat after the kill: %s, %v", ttl, err)
	}
	ws, err := cl.Workers(ctx)
	if err != nil || len(ws.Workers) != 1 || !ws.Workers[0].Cordoned {
		t.Fatalf("workers after the kill: %+v, %v", ws, err)
	}
	if newLeader := c.Leader(t); newLeader == leader {
		t.Fatalf("%s is still the leader", leader.ID)
	}
	var cordons []bool
	for _, ev := range allEvents(t, c) {
		if wc, ok := ev.Body.(fsm.WorkerCordoned); ok {
			cordons = append(cordons, wc.On)
		}
	}
	if want := []bool{true, false, true}; !slices.Equal(cordons, want) {
		t.Fatalf("cordon events %v, want %v (each write once)", cordons, want)
	}
}

// TestFailover_RegisterRetriedAfterLeaderKill: the leader applies a Register,
// then dies before the answer reaches the client. The client retries on
// another node with the same request id; the new leader recognizes it and
// returns the first registration: exactly one WorkerJoined for the worker, and
// the incarnation the client got is that event's.
func TestFailover_RegisterRetriedAfterLeaderKill(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	leader := c.Leader(t)
	li := indexOfNode(c, leader)
	rec := newRecorder(t)
	var once sync.Once
	rec.after = func(req *http.Request, resp *http.Response) error {
		if req.URL.Path != api.PathRegister {
			return nil
		}
		var lost error
		once.Do(func() {
			// The leader answered: the registration is applied. Lose the
			// answer and kill the leader before the client sees it.
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				lost = fmt.Errorf("first register answered %d", resp.StatusCode)
				return
			}
			c.Kill(t, li)
			lost = errors.New("injected: the answer was lost with the leader")
		})
		return lost
	}
	cl := newClient(t, urlsFrom(c, li), client.WithHTTPClient(rec.client()))
	reg, err := cl.Register(ctxT(t), api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}

	var registers []sent
	for _, s := range rec.take() {
		if strings.HasSuffix(s.url, api.PathRegister) {
			registers = append(registers, s)
		}
	}
	if len(registers) < 2 {
		t.Fatalf("register sent %d times, want a retry: %+v", len(registers), registers)
	}
	if registers[0].url != leader.URL+api.PathRegister {
		t.Fatalf("first attempt went to %s, want the leader %s", registers[0].url, leader.URL)
	}
	for _, s := range registers {
		if s.requestID == "" || s.requestID != registers[0].requestID {
			t.Fatalf("attempts carried request ids %+v, want one id", registers)
		}
	}

	var joined []fsm.WorkerJoined
	var joinedAt []fsm.RaftIndex
	for _, ev := range allEvents(t, c) {
		if wj, ok := ev.Body.(fsm.WorkerJoined); ok && wj.Worker == "w1" {
			joined = append(joined, wj)
			joinedAt = append(joinedAt, ev.Index)
			if ev.RequestID != registers[0].requestID {
				t.Errorf("WorkerJoined carries request id %q, want %q", ev.RequestID, registers[0].requestID)
			}
		}
	}
	if len(joined) != 1 {
		t.Fatalf("%d WorkerJoined for w1, want 1: %+v", len(joined), joined)
	}
	if reg.Incarnation != joined[0].Incarnation || fsm.RaftIndex(reg.Incarnation) != joinedAt[0] {
		t.Fatalf("client got incarnation %d, the log has %d at %d", reg.Incarnation, joined[0].Incarnation, joinedAt[0])
	}
	c.Restart(t, li)
	c.EnsureSame(t)
}

// TestRetry_NeverA4xx: a 4xx answer is returned at once, whichever node gave
// it: one attempt, and the error decodes with its code and status.
func TestRetry_NeverA4xx(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{Tokens: []server.Token{
		{Name: "ro", Role: server.RoleRead, Secret: "read-only-secret-0123"},
	}})
	rec := newRecorder(t)
	cl := newClient(t, c.URLs(), client.WithHTTPClient(rec.client()), client.WithToken("read-only-secret-0123"))
	ctx := ctxT(t)
	_, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	var ae *api.Error
	if !errors.Is(err, client.ErrForbidden) || !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("register with a read token: %v, want ErrForbidden with status 403", err)
	}
	if n := len(rec.take()); n != 1 {
		t.Fatalf("%d attempts for a 403, want 1", n)
	}
	if _, err := cl.Worker(ctx, "nobody"); !errors.Is(err, fsm.ErrUnknownWorker) || !strings.Contains(err.Error(), "get worker nobody") {
		t.Fatalf("unknown worker: %v, want fsm.ErrUnknownWorker naming the operation", err)
	}
	if n := len(rec.take()); n != 1 {
		t.Fatalf("%d attempts for a 404, want 1", n)
	}
}

// TestRetry_Unreachable: when no node answers, the client makes 1+retries
// attempts, rotating through the addresses, then returns ErrUnreachable.
func TestRetry_Unreachable(t *testing.T) {
	rec := newRecorder(t)
	addrs := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	cl := newClient(t, addrs, client.WithHTTPClient(rec.client()), client.WithRetries(3),
		client.WithBackoff(time.Millisecond, 2*time.Millisecond))
	_, err := cl.Cordon(ctxT(t), "w1", true)
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("cordon with no server: %v, want ErrUnreachable", err)
	}
	sent := rec.take()
	if len(sent) != 4 {
		t.Fatalf("%d attempts, want 4", len(sent))
	}
	for i, s := range sent {
		if want := addrs[i%2]; !strings.HasPrefix(s.url, want) {
			t.Fatalf("attempt %d went to %s, want %s", i, s.url, want)
		}
		if s.requestID != sent[0].requestID || s.requestID == "" {
			t.Fatalf("attempt %d carried request id %q, want %q", i, s.requestID, sent[0].requestID)
		}
	}
	// A new call is a new write: a new request id.
	_, _ = cl.Cordon(ctxT(t), "w1", true)
	if again := rec.take(); again[0].requestID == sent[0].requestID {
		t.Fatal("two calls shared a request id")
	}
}
