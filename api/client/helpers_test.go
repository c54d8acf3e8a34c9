package client_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// newClient returns a client closed at cleanup.
func newClient(tb testing.TB, addrs []string, opts ...client.Option) *client.Client {
	tb.Helper()
	c, err := client.New(addrs, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// ctxT is a context bounded by the test cluster's time-out.
func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	tb.Cleanup(cancel)
	return ctx
}

// urlsFrom orders the cluster's URLs starting at node i, so that a client
// tries that node first.
func urlsFrom(c *testcluster.Cluster, i int) []string {
	u := c.URLs()
	return append(u[i:], u[:i]...)
}

func indexOfNode(c *testcluster.Cluster, n *testcluster.Node) int {
	return slices.Index(c.Nodes, n)
}

// recorder is an http.RoundTripper that records every request the client
// sends and can fail one on purpose.
type recorder struct {
	next *http.Transport
	mu   sync.Mutex // guards reqs and before; the client's calls run concurrently
	reqs []sent
	// before, if set, runs for each request; a non-nil error fails it
	// without sending it, a nil response sends it.
	before func(*http.Request) error
	// after, if set, runs once a response came back; a non-nil error replaces
	// the response (the answer is lost on the way back).
	after func(*http.Request, *http.Response) error
}

type sent struct {
	method, url, requestID, lastEventID string
	// budget is the time the request's context had left when it was sent
	// (0: no deadline).
	budget time.Duration
}

func newRecorder(tb testing.TB) *recorder {
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &recorder{next: tr}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var budget time.Duration
	if dl, ok := req.Context().Deadline(); ok {
		budget = time.Until(dl)
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, sent{method: req.Method, url: req.URL.String(),
		requestID: req.Header.Get(api.HeaderRequestID), lastEventID: req.Header.Get("Last-Event-ID"), budget: budget})
	before, after := r.before, r.after
	r.mu.Unlock()
	if before != nil {
		if err := before(req); err != nil {
			return nil, err
		}
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil && after != nil {
		if aerr := after(req, resp); aerr != nil {
			return nil, aerr
		}
	}
	return resp, err
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func (r *recorder) client() *http.Client { return &http.Client{Transport: r} }

// specs declares n partitions named prefix0..prefix(n-1).
func specs(prefix string, n int) []fsm.PartitionSpec {
	var out []fsm.PartitionSpec
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		out = append(out, fsm.PartitionSpec{ID: fsm.PartitionID(id), Subjects: []string{"s." + id + ".>"}})
	}
	return out
}

// claim assigns partitions to workers directly through raft (there is no
// controller in these tests).
func claim(tb testing.TB, c *testcluster.Cluster, items ...fsm.ClaimItem) fsm.Result {
	tb.Helper()
	return c.MustApply(tb, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Claim{Items: items}})
}

// allEvents reads the leader's whole audit log.
func allEvents(tb testing.TB, c *testcluster.Cluster) []fsm.Event {
	tb.Helper()
	evs, err := testcluster.AllEvents(c.Leader(tb).Raft().Audit())
	if err != nil {
		tb.Fatal(err)
	}
	return evs
}

// mustOK returns a function that fails the test on an error or a rejected
// item: mustOK(t, "declare")(c.Declare(ctx, specs)).
func mustOK(tb testing.TB, what string) func(api.WriteResponse, error) api.WriteResponse {
	return func(res api.WriteResponse, err error) api.WriteResponse {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		if err := client.ItemErrors(res); err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return res
	}
}
