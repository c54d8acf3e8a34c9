package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
)

// TestPeerToken: the corruption check presents the explicit PeerToken, else
// the least privileged token every node accepts, else a worker token derived
// from the shared key, else nothing.
func TestPeerToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	derived, err := WorkerToken(key, PeerWorkerID)
	if err != nil {
		t.Fatal(err)
	}
	op := Token{Name: "ops", Role: RoleOperator, Secret: "operator-secret-0123456789"}
	wk := Token{Name: "w1", Role: RoleWorker, Secret: "worker-secret-0123456789ab", Worker: "w1"}
	ro := Token{Name: "ro", Role: RoleRead, Secret: "read-secret-0123456789abcd"}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"explicit", Config{PeerToken: "explicit-0123456789abcdef", Tokens: []Token{ro}}, "explicit-0123456789abcdef"},
		{"read before worker and operator", Config{Tokens: []Token{op, wk, ro}}, ro.Secret},
		{"worker before operator", Config{Tokens: []Token{op, wk}, WorkerTokenKey: key}, wk.Secret},
		{"operator", Config{Tokens: []Token{op}}, op.Secret},
		{"a derived token without static ones", Config{WorkerTokenKey: key}, derived},
		{"no authentication", Config{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := peerToken(tt.cfg); got != tt.want {
				t.Fatalf("peerToken = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzParsePeerDigests: a member's status answer, as the corruption check
// reads it, is refused, or gives exactly the digests the answer lists (at
// most maxPeerDigests, each at a non-zero index with a 64-digit sum), from
// the member asked.
func FuzzParsePeerDigests(f *testing.F) {
	ok, _ := json.Marshal(api.ClusterStatus{NodeID: "n2", Digests: []api.Digest{
		{Index: 5, Digest: strings.Repeat("ab", 32)}, {Index: 9, Digest: strings.Repeat("CD", 32)}}})
	f.Add(ok)
	f.Add([]byte(`{"node_id":"n3","digests":[]}`))
	f.Add([]byte(`{"node_id":"n2","digests":[{"index":0,"digest":"00"}]}`))
	f.Add([]byte(`{"node_id":"n2","digests":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parsePeerDigests("n2", body)
		if err != nil {
			return
		}
		var st api.ClusterStatus
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("accepted what does not decode: %v", err)
		}
		if st.NodeID != "n2" || len(got) != len(st.Digests) || len(got) > maxPeerDigests {
			t.Fatalf("accepted node %q with %d digests as %d", st.NodeID, len(st.Digests), len(got))
		}
		for i, d := range got {
			if uint64(d.Index) != st.Digests[i].Index || d.Index == 0 || d.String() != strings.ToLower(st.Digests[i].Digest) {
				t.Fatalf("digest %d: %d %s from %+v", i, d.Index, d, st.Digests[i])
			}
		}
	})
}
