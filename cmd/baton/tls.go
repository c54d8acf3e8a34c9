package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// certPool reads a PEM CA bundle.
func certPool(flag, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate found", flag, file)
	}
	return pool, nil
}

// apiTLS builds the API's HTTPS server config and the client config used to
// reach other nodes' APIs (forwarding to the leader, joining), or nil, nil when
// the API serves plain HTTP.
func apiTLS(certFile, keyFile, caFile string) (serverCfg, clientCfg *tls.Config, err error) {
	if certFile == "" && keyFile == "" {
		if caFile != "" {
			return nil, nil, errors.New("--http-tls-ca needs --http-tls-cert and --http-tls-key")
		}
		return nil, nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("--http-tls-cert and --http-tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
	}
	clientCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		if clientCfg.RootCAs, err = certPool("--http-tls-ca", caFile); err != nil {
			return nil, nil, err
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, clientCfg, nil
}

// httpClient is an HTTP client for the API, trusting caFile's CAs (system
// roots when empty) for https:// addresses.
func httpClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}}
}
