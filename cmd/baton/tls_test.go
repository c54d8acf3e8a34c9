package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a throwaway CA and a server certificate for 127.0.0.1 signed
// by it; it returns the CA, certificate and key file paths.
func writeCA(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// TestServer_HTTPS: with --http-tls-cert/--http-tls-key the API is served over
// HTTPS at an https:// URL; a client trusting the CA (--ca-cert) talks to it,
// one that does not is refused.
func TestServer_HTTPS(t *testing.T) {
	ca, cert, key := writeCA(t)
	cfg, err := parseServer(t, "--id", "n1", "--bootstrap", "--data-dir", t.TempDir(),
		"--raft-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--http-tls-cert", cert, "--http-tls-key", key, "--http-tls-ca", ca)
	if err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.shutdown(ctx)
	}()
	if !strings.HasPrefix(n.url, "https://") {
		t.Fatalf("API URL %s is not https", n.url)
	}
	good := clientFlags{addr: n.url, caCert: ca, timeout: 10 * time.Second, consistency: "stale"}
	cl, err := good.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := cl.Status(ctx)
		if err == nil && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPS status: %v %+v", err, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bad := clientFlags{addr: n.url, timeout: 2 * time.Second, consistency: "stale"}
	cl2, err := bad.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if _, err := cl2.Status(ctx); err == nil {
		t.Fatal("a client without the CA was not refused")
	}
}
