package client_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/testcluster"
)

// hangingNode returns the URL of a listener that accepts connections and
// never answers: a node whose process is frozen (SIGSTOP, a paused VM) while
// its kernel still completes TCP handshakes.
func hangingNode(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex // guards conns, appended by the accept loop
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// forwardCount counts the requests nodes forward to the leader (the
// server's Config.Forward transport).
type forwardCount struct {
	next http.RoundTripper
	mu   sync.Mutex // guards n; every node's forwarding goroutines add
	n    int
}

func newForwardCount(tb testing.TB) *forwardCount {
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &forwardCount{next: tr}
}

func (f *forwardCount) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	return f.next.RoundTrip(r)
}

// take returns how many requests were forwarded since the last call.
func (f *forwardCount) take() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.n
	f.n = 0
	return n
}

// freezer is a proxy in front of one node's API that can freeze: while
// frozen, nothing goes through it either way (requests it receives wait, and
// so do answers it has not passed on), as with a SIGSTOPped node. It renames
// the nodes in X-Baton-Leader to their proxies, so that a client given the
// proxies' URLs learns the leader's proxy.
type freezer struct {
	target string
	srv    *httptest.Server
	tr     *http.Transport
	names  map[string]string // node URL -> proxy URL; set before any request

	mu       sync.Mutex    // guards thawed and inflight; the proxy's handlers and the test use it
	thawed   chan struct{} // nil: not frozen; else closed at thaw
	inflight map[string]int
}

// freezers starts one freezer per node of c, in c.Nodes's order, and returns
// them with their URLs. At cleanup they thaw (so that the requests they hold
// end) before they close.
func freezers(tb testing.TB, c *testcluster.Cluster) ([]*freezer, []string) {
	tb.Helper()
	names := map[string]string{}
	var fs []*freezer
	var urls []string
	for _, n := range c.Nodes {
		f := &freezer{target: n.URL, tr: &http.Transport{}, names: names, inflight: map[string]int{}}
		f.srv = httptest.NewServer(f)
		names[n.URL] = f.srv.URL
		fs = append(fs, f)
		urls = append(urls, f.srv.URL)
		tb.Cleanup(func() {
			f.thaw()
			f.srv.Close()
			f.tr.CloseIdleConnections()
		})
	}
	return fs, urls
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed == nil {
		f.thawed = make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed != nil {
		close(f.thawed)
		f.thawed = nil
	}
}

// pending returns how many requests for path the proxy holds now.
func (f *freezer) pending(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight[path]
}

// pass waits while the proxy is frozen; false if the client gave up first.
func (f *freezer) pass(r *http.Request) bool {
	f.mu.Lock()
	ch := f.thawed
	f.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (f *freezer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.inflight[r.URL.Path]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[r.URL.Path]--
		f.mu.Unlock()
	}()
	if !f.pass(r) {
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI, out.Host = "", ""
	out.URL.Scheme, out.URL.Host = "http", strings.TrimPrefix(f.target, "http://")
	resp, err := f.tr.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if !f.pass(r) {
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if l := resp.Header.Get(api.HeaderLeader); l != "" {
		w.Header().Set(api.HeaderLeader, f.names[l])
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
