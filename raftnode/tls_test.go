package raftnode_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// testCA issues node certificates for 127.0.0.1 signed by a throwaway CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "baton test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// tlsConfig returns a mutual-TLS config for one node.
func (ca *testCA) tlsConfig(t *testing.T, name string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13,
	}
}

// TestMutualTLS: nodes with certificates from the cluster CA form a cluster and
// replicate; a node whose certificate another CA signed cannot take part.
func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	c := testcluster.New(t, 3, func(cfg *raftnode.Config) { cfg.TLS = ca.tlsConfig(t, cfg.NodeID) })
	res := c.MustApply(t, join("w1"))
	c.WaitApplied(t, res.Index)
	c.EnsureSame(t)

	rogue := raftnode.DefaultConfig()
	testcluster.Fast(&rogue)
	rogue.NodeID, rogue.DataDir, rogue.APIAddr = "rogue", filepath.Join(t.TempDir(), "rogue"), "http://rogue.invalid"
	rogue.RaftAddr = "127.0.0.1:0"
	rogue.TLS = newCA(t).tlsConfig(t, "rogue")
	n, err := raftnode.New(rogue)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The leader adds it to the configuration, but it never receives a byte of
	// the log: every connection fails the handshake.
	_ = c.Leader(t).Raft().Join(ctx, "rogue", n.RaftAddr(), rogue.APIAddr)
	res = c.MustApply(t, join("w2"))
	c.WaitApplied(t, res.Index)
	if idx := n.AppliedIndex(); idx != 0 {
		t.Fatalf("node with a foreign certificate applied up to index %d", idx)
	}
	// It never heard a leader, so it is not caught up and serves no reads.
	if err := n.Read(context.Background(), raftnode.Stale, func(*fsm.State) {}); !errors.Is(err, raftnode.ErrNotReady) {
		t.Fatalf("stale read on a node that never heard the leader: %v, want ErrNotReady", err)
	}
	if err := c.Leader(t).Raft().Remove(context.Background(), "rogue"); err != nil {
		t.Fatal(err)
	}
}

func TestConfig_Validate(t *testing.T) {
	var zero raftnode.Config
	err := zero.Validate()
	if err == nil {
		t.Fatal("zero config accepted")
	}
	good := raftnode.DefaultConfig()
	good.NodeID, good.DataDir, good.APIAddr = "n1", t.TempDir(), "http://127.0.0.1:1"
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(*raftnode.Config)
	}{
		{"no node id", func(c *raftnode.Config) { c.NodeID = "" }},
		{"node id the state machine refuses", func(c *raftnode.Config) { c.NodeID = "bad id!" }},
		{"node id over 128 bytes", func(c *raftnode.Config) { c.NodeID = strings.Repeat("n", 129) }},
		{"api addr over its limit", func(c *raftnode.Config) { c.APIAddr = "http://" + strings.Repeat("a", 300) }},
		{"no data dir", func(c *raftnode.Config) { c.DataDir = "" }},
		{"no api addr", func(c *raftnode.Config) { c.APIAddr = "" }},
		{"bad raft addr", func(c *raftnode.Config) { c.RaftAddr = "nope" }},
		{"unspecified advertise", func(c *raftnode.Config) { c.AdvertiseAddr = "0.0.0.0:7000" }},
		{"lease above heartbeat", func(c *raftnode.Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }},
		{"zero apply timeout", func(c *raftnode.Config) { c.ApplyTimeout = 0 }},
		{"no snapshots kept", func(c *raftnode.Config) { c.SnapshotRetain = 0 }},
		{"tls without certificate", func(c *raftnode.Config) { c.TLS = &tls.Config{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("accepted")
			}
			if _, err := raftnode.New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}
