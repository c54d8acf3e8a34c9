package client

import (
	"encoding/json"
	"testing"

	"github.com/batonhq/baton/api"
)

// FuzzDecodeError: whatever a node, or a proxy in front of it, answers with a
// non-2xx status becomes an *api.Error with a code and a status; the API's
// envelope is taken as it is, and any other body is cut to a bounded message.
func FuzzDecodeError(f *testing.F) {
	f.Add(400, []byte(`{"error":{"code":"invalid_argument","message":"worker: too long","status":400}}`))
	f.Add(503, []byte(`<html>bad gateway</html>`))
	f.Add(409, []byte(`{"error":{"code":"","message":"x"}}`))
	f.Add(500, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, data []byte) {
		if status < 100 || status > 599 {
			return // not an HTTP status: net/http never hands one over
		}
		e := decodeError(status, data)
		if e == nil || e.Code == "" || e.Status == 0 {
			t.Fatalf("%d %q: got %+v, want a code and a status", status, data, e)
		}
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
			if e.Code != eb.Error.Code || e.Message != eb.Error.Message {
				t.Fatalf("envelope %+v answered as %+v", eb.Error, e)
			}
			return
		}
		if e.Status != status || len(e.Message) > 256 {
			t.Fatalf("%d %q: got status %d and a %d-byte message", status, data, e.Status, len(e.Message))
		}
	})
}
