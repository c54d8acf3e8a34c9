package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// Tokens of the authenticated test clusters, one per role; the worker tokens
// are bound to w1 and w2.
const (
	opToken      = "operator-secret-0123456789"
	workerToken  = "worker-secret-0123456789ab" // w1's
	worker2Token = "worker2-secret-0123456789a" // w2's
	readToken    = "read-secret-0123456789abcd"
	bogusToken   = "nobody-knows-this-token-00"
)

func tokens() []server.Token {
	return []server.Token{
		{Name: "ops", Role: server.RoleOperator, Secret: opToken},
		{Name: "w1", Role: server.RoleWorker, Secret: workerToken, Worker: "w1"},
		{Name: "w2", Role: server.RoleWorker, Secret: worker2Token, Worker: "w2"},
		{Name: "ro", Role: server.RoleRead, Secret: readToken},
	}
}

// testKey is the worker token key of the authenticated test clusters.
func testKey() []byte { return []byte("0123456789abcdef0123456789abcdef") }

// derivedToken is worker's token derived from testKey.
func derivedToken(tb testing.TB, worker fsm.WorkerID) string {
	tb.Helper()
	tok, err := server.WorkerToken(testKey(), worker)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// httpClient returns a client whose idle connections are closed at cleanup,
// so that goleak sees no keep-alive goroutines.
func httpClient(tb testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testcluster.Timeout}
}

// response is one raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; token "" sends none.
func do(tb testing.TB, hc *http.Client, method, url, body, token string, hdr map[string]string) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return send(tb, hc, method, url, rd, body != "", token, hdr)
}

// chunked is do with a body of unknown length (sent chunked, no
// Content-Length), as a streaming client would send it.
func chunked(tb testing.TB, hc *http.Client, method, url, body, token string, hdr map[string]string) response {
	tb.Helper()
	return send(tb, hc, method, url, struct{ io.Reader }{strings.NewReader(body)}, true, token, hdr)
}

func send(tb testing.TB, hc *http.Client, method, url string, rd io.Reader, hasBody bool, token string, hdr map[string]string) response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// strictError decodes an error body, refusing anything but
// {"error":{"code","message","status"}}, and checks that its status is the
// response's and its code's.
func strictError(status int, body []byte) (*api.Error, error) {
	var env struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
			Status  *int    `json:"status"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("error body %q: %w", body, err)
	}
	e := env.Error
	switch {
	case e == nil || e.Code == nil || e.Message == nil || e.Status == nil:
		return nil, fmt.Errorf("error body %q lacks error.code, .message or .status", body)
	case *e.Code == "" || *e.Message == "":
		return nil, fmt.Errorf("error body %q has an empty code or message", body)
	case *e.Status != status:
		return nil, fmt.Errorf("error body %q: status %d, response %d", body, *e.Status, status)
	case api.StatusOf(*e.Code) != status:
		return nil, fmt.Errorf("error body %q: code %s maps to %d, response %d", body, *e.Code, api.StatusOf(*e.Code), status)
	}
	return &api.Error{Code: *e.Code, Message: *e.Message, Status: *e.Status}, nil
}

// stateOf is what a bad request must leave unchanged on the leader.
type stateOf struct {
	node    string
	bytes   []byte     // the snapshot encoding: index, request table and all
	state   *fsm.State // a copy, for fsm.SameContent
	events  int        // audit log events
	applied fsm.RaftIndex
}

func capture(tb testing.TB, c *testcluster.Cluster) stateOf {
	tb.Helper()
	l := c.Leader(tb)
	r := l.Raft()
	var st stateOf
	var buf bytes.Buffer
	var werr error
	if err := r.Read(context.Background(), raftnode.Stale, func(s *fsm.State) {
		werr = s.WriteSnapshot(&buf)
		st.state = s.Clone()
		st.applied = s.AppliedIndex()
	}); err != nil {
		tb.Fatalf("read %s: %v", l.ID, err)
	}
	if werr != nil {
		tb.Fatal(werr)
	}
	st.node, st.bytes, st.events = l.ID, buf.Bytes(), r.Audit().Bounds().Count
	return st
}

// unchanged fails unless after holds what before did. exact also requires the
// same snapshot bytes (the request never reached raft); otherwise only the
// content must match (a rejected command advances the applied index and
// remembers its request id).
func unchanged(tb testing.TB, before, after stateOf, exact bool) {
	tb.Helper()
	if before.events != after.events {
		tb.Errorf("audit log went from %d to %d events", before.events, after.events)
	}
	if err := fsm.SameContent(before.state, after.state); err != nil {
		tb.Errorf("state content changed: %v", err)
	}
	if exact && before.node == after.node && !bytes.Equal(before.bytes, after.bytes) {
		tb.Errorf("state snapshot changed (applied %d -> %d) though the request should not have reached raft",
			before.applied, after.applied)
	}
}

// waitFor polls f until it returns nil (testcluster.Eventually with a name).
func waitFor(tb testing.TB, what string, f func() error) {
	tb.Helper()
	testcluster.Eventually(tb, what, f)
}
