package client

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
)

// FuzzLeaderHint: whatever a node (or a proxy in front of it) puts in
// X-Baton-Leader, the client either ignores it or takes it for one of its own
// addresses, the one the hint spells once normalized; a hint never sends the
// client anywhere else.
func FuzzLeaderHint(f *testing.F) {
	for _, s := range []string{
		"http://10.0.0.1:7070", "HTTP://10.0.0.1:7070/", "https://node-b.example:7443", "http://10.0.0.1:7070/v1",
		"http://u:p@10.0.0.1:7070", "http://10.0.0.1:7070?x", "10.0.0.1:7070", "", " ", "http://", "\x00",
	} {
		f.Add(s)
	}
	addrs := []string{"http://10.0.0.1:7070", "https://node-b.example:7443", "http://[::1]:7070"}
	r := newRouter(addrs, time.Second)
	f.Fuzz(func(t *testing.T, hint string) {
		h := http.Header{}
		h[api.HeaderLeader] = []string{hint}
		i := r.leaderIn(h)
		if i == noLeader {
			return
		}
		if i < 0 || i >= len(addrs) {
			t.Fatalf("leaderIn(%q) = %d, out of range", hint, i)
		}
		base, err := parseAddr(hint)
		if err != nil {
			t.Fatalf("leaderIn(%q) = %s, but the hint is no address: %v", hint, addrs[i], err)
		}
		if !strings.EqualFold(base, addrs[i]) {
			t.Fatalf("leaderIn(%q) = %s, but the hint spells %s", hint, addrs[i], base)
		}
	})
}
