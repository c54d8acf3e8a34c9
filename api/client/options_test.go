package client_test

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/api/client"
)

func TestNew_RefusesBadOptions(t *testing.T) {
	addrs := []string{"http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		opt  client.Option
	}{
		{"nil option", nil},
		{"empty token", client.WithToken("")},
		{"token with a space", client.WithToken("a b")},
		{"token with a newline", client.WithToken("ab\n")},
		{"nil http client", client.WithHTTPClient(nil)},
		{"zero timeout", client.WithTimeout(0)},
		{"negative timeout", client.WithTimeout(-time.Second)},
		{"negative retries", client.WithRetries(-1)},
		{"unbounded retries", client.WithRetries(1001)},
		{"zero backoff", client.WithBackoff(0, time.Second)},
		{"backoff max below initial", client.WithBackoff(time.Second, time.Millisecond)},
		{"nil logger", client.WithLogger(nil)},
		{"unset consistency", client.WithConsistency(0)},
		{"unknown consistency", client.WithConsistency(9)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(addrs, tc.opt)
			if !errors.Is(err, client.ErrInvalidOption) {
				t.Fatalf("New: %v, want ErrInvalidOption", err)
			}
			if c != nil {
				t.Fatal("New returned a client with an error")
			}
		})
	}
}

func TestNew_AcceptsGoodOptions(t *testing.T) {
	c, err := client.New([]string{"http://127.0.0.1:1", "https://[::1]:8443/"},
		client.WithToken("secret"), client.WithHTTPClient(&http.Client{}), client.WithTimeout(time.Second),
		client.WithRetries(0), client.WithBackoff(time.Millisecond, time.Millisecond),
		client.WithLogger(slog.Default()), client.WithConsistency(client.ConsistencyLinearizable))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestNew_RefusesBadAddresses(t *testing.T) {
	if _, err := client.New(nil); !errors.Is(err, client.ErrNoAddresses) {
		t.Fatalf("no addresses: %v", err)
	}
	for _, a := range []string{"", "127.0.0.1:8080", "ftp://host:1", "http://", "http://h:1/v1", "http://h:1?x=1",
		"http://u:p@h:1", "http://h:1#frag", "://nope"} {
		t.Run(a, func(t *testing.T) {
			if _, err := client.New([]string{"http://ok:1", a}); !errors.Is(err, client.ErrInvalidAddress) {
				t.Fatalf("%q: %v, want ErrInvalidAddress", a, err)
			}
		})
	}
}
