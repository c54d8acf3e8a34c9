package server

import "testing"

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
