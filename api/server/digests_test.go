package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestDigestCheck_ComparesThroughEveryMembersStatus: every node reports its
// digests in GET /v1/cluster/status, the same at the same index on every
// node, and its corruption check reads the other members' with a token they
// accept, whatever the authentication: static tokens (it presents the read
// token), only a worker token key (a derived token), or an explicit
// PeerToken.
func TestDigestCheck_ComparesThroughEveryMembersStatus(t *testing.T) {
	tests := []struct {
		name string
		cfg  server.Config
	}{
		{"static tokens", server.Config{Tokens: tokens()}},
		{"a worker token key only", server.Config{WorkerTokenKey: testKey()}},
		{"an explicit peer token", server.Config{Tokens: tokens(), PeerToken: opToken}},
		{"no authentication", server.Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.DigestCheckInterval = 20 * time.Millisecond
			c := testcluster.NewWithAPI(t, 3, cfg)
			c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Join{Worker: "w1"}})
			var mark fsm.RaftIndex
			testcluster.Eventually(t, "a digest mark", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				mark, err = c.Leader(t).Raft().MarkDigest(ctx)
				return err
			})
			hc := httpClient(t)
			// Any token the node accepts reads the status.
			token := ""
			switch {
			case cfg.Tokens != nil:
				token = readToken
			case cfg.WorkerTokenKey != nil:
				token = derivedToken(t, "w9")
			}
			testcluster.Eventually(t, "every node compared at the mark", func() error {
				var want string
				for _, n := range c.Nodes {
					st, err := status(hc, n.URL, token)
					if err != nil {
						return err
					}
					if st.DigestChecked < uint64(mark) || len(st.Divergence) > 0 {
						return fmt.Errorf("%s: checked %d, mark %d, divergence %+v", n.ID, st.DigestChecked, mark, st.Divergence)
					}
					var at string
					for _, d := range st.Digests {
						if d.Index == uint64(mark) {
							at = d.Digest
						}
					}
					if len(at) != 64 || want != "" && at != want {
						return fmt.Errorf("%s: digest %q at %d, others %q", n.ID, at, mark, want)
					}
					want = at
				}
				return nil
			})
		})
	}
}

// status GETs a node's cluster status.
func status(hc *http.Client, base, token string) (api.ClusterStatus, error) {
	var st api.ClusterStatus
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+api.PathStatus, nil)
	if err != nil {
		return st, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
