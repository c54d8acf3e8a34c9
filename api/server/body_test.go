package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/internal/testcluster"
)

// rawConn is one client connection written by hand, so that a test can
// announce a body and not send it. Every read waits at most
// testcluster.Timeout.
type rawConn struct {
	tb   testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(tb testing.TB, base string) *rawConn {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, testcluster.Timeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(testcluster.Timeout)); err != nil {
		tb.Fatal(err)
	}
	return &rawConn{tb: tb, conn: conn, br: bufio.NewReader(conn)}
}

// send writes a request head, announcing contentLength bytes of body (none if
// negative), and then body, which may be shorter than announced.
func (c *rawConn) send(method, path, token string, contentLength int, body string) {
	c.tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		c.tb.Fatal(err)
	}
}

// response reads one response and its body.
func (c *rawConn) response() (*http.Response, []byte) {
	c.tb.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.tb.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("response body: %v", err)
	}
	return resp, body
}

// closed fails unless the server closes the connection (before the
// connection's deadline).
func (c *rawConn) closed() {
	c.tb.Helper()
	n, err := c.br.Read(make([]byte, 1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.tb.Fatal("the server kept the connection open")
	case err == nil:
		c.tb.Fatalf("read %d more bytes; want the connection closed", n)
	}
}

// TestEarlyAnswers_DoNotWaitForTheBody: a client that announces a body and
// does not send it gets its answer at once when the answer does not need the
// body (401, 403, 404, 405, 413, and a GET's 200), with "Connection: close",
// and the connection is closed; when the answer needs the body, a 408 comes
// once the body timeout passes. Nothing changes. Sent to the leader and to a
// follower.
func TestEarlyAnswers_DoNotWaitForTheBody(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{Tokens: tokens(), WorkerTokenKey: testKey(), MaxBodyBytes: maxBody,
		BodyTimeout: 200 * time.Millisecond})
	tests := []struct {
		name          string
		method, path  string
		token         string
		contentLength int
		body          string // sent of the announced length
		status        int
		code          string
	}{
		{"no token", "POST", "/v1/rebalance", "", 1000, "", 401, api.CodeUnauthorized},
		{"unknown token", "POST", "/v1/rebalance", bogusToken, 1000, "", 401, api.CodeUnauthorized},
		{"tampered derived token", "POST", "/v1/workers/w2/heartbeat", derivedToken(t, "w2") + "x", 1000, "", 401, api.CodeUnauthorized},
		{"role too low", "POST", "/v1/rebalance", readToken, 1000, "", 403, api.CodeForbidden},
		{"another worker's token", "POST", "/v1/workers/w1/checkpoints", worker2Token, 1000, "", 403, api.CodeForbidden},
		{"method not allowed", "PUT", "/v1/rebalance", opToken, 1000, "", 405, api.CodeMethodNotAllowed},
		{"unknown path", "POST", "/v1/nope", opToken, 1000, "", 404, api.CodeNotFound},
		{"body announced too large", "POST", "/v1/rebalance", opToken, maxBody + 1, "", 413, api.CodeBodyTooLarge},
		{"invalid worker id in the path", "POST", "/v1/workers/w%20x/cordon", opToken, 1000, "", 400, "invalid_argument"},
		{"a GET ignores a body", "GET", "/v1/cluster/summary?consistency=stale", readToken, 1000, "", 200, ""},
		{"body never sent", "POST", "/v1/rebalance", opToken, 1000, "", 408, api.CodeRequestTimeout},
		{"body cut short", "POST", "/v1/rebalance", opToken, 1000, `{"paused":`, 408, api.CodeRequestTimeout},
		{"worker's body never sent", "POST", "/v1/workers/w2/heartbeat", derivedToken(t, "w2"), 1000, "", 408, api.CodeRequestTimeout},
	}
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			base := c.Leader(t).URL
			if target == "follower" {
				base = c.Followers(t)[0].URL
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := capture(t, c)
					rc := dialRaw(t, base)
					rc.send(tt.method, tt.path, tt.token, tt.contentLength, tt.body)
					resp, body := rc.response()
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
					}
					if tt.code != "" {
						e, err := strictError(resp.StatusCode, body)
						if err != nil {
							t.Fatal(err)
						}
						if e.Code != tt.code {
							t.Fatalf("code %s (%s), want %s", e.Code, e.Message, tt.code)
						}
					}
					if !resp.Close {
						t.Errorf("no Connection: close (header %v)", resp.Header)
					}
					rc.closed()
					unchanged(t, before, capture(t, c), true)
				})
			}
		})
	}
}

// TestReadBodies_KeepTheConnection: a request whose body was read to its end
// keeps the connection for the next one, whether it succeeded or was refused.
func TestReadBodies_KeepTheConnection(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{Tokens: tokens(), MaxBodyBytes: maxBody})
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			base := c.Leader(t).URL
			if target == "follower" {
				base = c.Followers(t)[0].URL
			}
			rc := dialRaw(t, base)
			for i, req := range []struct {
				method, path, body string
				status             int
			}{
				{"POST", "/v1/rebalance", `{}`, 400},
				{"POST", "/v1/rebalance", `{"paused":true}`, 200},
				{"GET", "/v1/cluster/summary", "", 200},
				{"POST", "/v1/rebalance", `{"paused":false}`, 200},
			} {
				n := len(req.body)
				if req.method == "GET" {
					n = -1
				}
				rc.send(req.method, req.path, opToken, n, req.body)
				resp, body := rc.response()
				if resp.StatusCode != req.status || resp.Close {
					t.Fatalf("request %d: status %d (close %t), want %d on a kept connection: %s", i, resp.StatusCode, resp.Close, req.status, body)
				}
			}
		})
	}
}
