package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

// fakeServer answers every request with handle and counts them.
func fakeServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL, &n
}

func TestErrors_DecodedAndClassified(t *testing.T) {
	fast := []client.Option{client.WithRetries(2), client.WithBackoff(time.Millisecond, time.Millisecond)}
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		want     error
		attempts int32
	}{
		{"api error", 409, `{"error":{"code":"stale_epoch","message":"m","status":409}}`, fsm.ErrStaleEpoch, 1},
		{"api error without status", 404, `{"error":{"code":"not_found","message":"m"}}`, client.ErrNotFound, 1},
		{"proxy page 502", 502, `<html>bad gateway</html>`, client.ErrUnavailable, 3},
		{"proxy page 504", 504, `gateway timeout`, client.ErrTimeout, 3},
		{"no leader", 503, `{"error":{"code":"no_leader","message":"m","status":503}}`, client.ErrNoLeader, 3},
		{"unknown outcome", 503, `{"error":{"code":"unknown_outcome","message":"m","status":503}}`, client.ErrUnknownOutcome, 3},
		{"teapot", 418, `short and stout`, client.ErrInternal, 1},
		{"internal: a write's outcome is unknown, another node may answer", 500, `{"error":{"code":"internal","message":"bug","status":500}}`, client.ErrInternal, 3},
		{"a proxy's 500 page", 500, `<html>internal server error</html>`, client.ErrInternal, 3},
		{"garbage 200", 200, `{"index":`, client.ErrBadResponse, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, n := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			cl := newClient(t, []string{url, url}, fast...)
			_, err := cl.SetRebalance(ctxT(t), true)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if got := n.Load(); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
			var ae *api.Error
			if tc.status != 200 && (!errors.As(err, &ae) || ae.Status != tc.status) {
				t.Fatalf("error %v does not carry status %d", err, tc.status)
			}
		})
	}
}

// TestRetry_SameRequestIDAndRecovery: a write answered 503 is retried with
// its request id until a node answers, and then succeeds.
func TestRetry_SameRequestIDAndRecovery(t *testing.T) {
	var mu sync.Mutex // guards ids, appended by the server's goroutines
	var ids []string
	url, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(api.HeaderRequestID))
		n := len(ids)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"error":{"code":"unknown_outcome","message":"m","status":503}}`))
			return
		}
		_, _ = w.Write([]byte(`{"index":42,"duplicate":true}`))
	})
	cl := newClient(t, []string{url}, client.WithBackoff(time.Millisecond, time.Millisecond))
	res, err := cl.Cordon(ctxT(t), "w1", true)
	if err != nil || res.Index != 42 || !res.Duplicate {
		t.Fatalf("cordon: %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Fatalf("request ids %q, want one id three times", ids)
	}
}

func TestItemErrors(t *testing.T) {
	if err := client.ItemErrors(api.WriteResponse{Items: []*api.Error{nil, nil}}); err != nil {
		t.Fatalf("all accepted: %v", err)
	}
	res := api.WriteResponse{Items: []*api.Error{nil, api.FromReject(&fsm.RejectError{Code: fsm.CodeStaleEpoch, Msg: "p1"}),
		api.FromReject(&fsm.RejectError{Code: fsm.CodeNotOwner, Msg: "p2"})}}
	err := client.ItemErrors(res)
	var be *client.BatchError
	if !errors.As(err, &be) || len(be.Items) != 3 {
		t.Fatalf("ItemErrors: %v", err)
	}
	if !errors.Is(err, fsm.ErrStaleEpoch) || !errors.Is(err, fsm.ErrNotOwner) || errors.Is(err, fsm.ErrWrongPhase) {
		t.Fatalf("errors.Is on %v matches the wrong codes", err)
	}
	if got, want := err.Error(), "client: 2 items rejected, first 1: api: stale_epoch: p1"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}
