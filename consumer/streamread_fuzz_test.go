package consumer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FuzzDecodeMessageGet: whatever the message-get API answers, decoding it
// never panics; an answer is a message (with a subject), "none", or an
// error; and a well-formed answer decodes to the message that was encoded.
func FuzzDecodeMessageGet(f *testing.F) {
	f.Add([]byte(`{"message":{"subject":"orders.p1.x","seq":7,"data":"aGk=","time":"2026-12-07T10:00:00Z"}}`), "orders.p1.x", uint64(7), []byte("hi"))
	f.Add([]byte(`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`), "s", uint64(1), []byte(nil))
	f.Add([]byte(`{"error":{"code":500,"err_code":10001,"description":"x"}}`), "", uint64(0), []byte{})
	f.Add([]byte(`{"message":{"subject":"a","seq":1,"hdrs":"TkFUUy8xLjANCkE6IEINCg0K"}}`), "a", uint64(1), []byte{0})
	f.Add([]byte(`{}`), "a.b", uint64(1<<63), []byte("x"))
	f.Add([]byte(`not json`), "a", uint64(2), []byte("y"))
	f.Fuzz(func(t *testing.T, raw []byte, subject string, seq uint64, data []byte) {
		m, err := decodeMessageGet(raw)
		if err == nil && m != nil && m.Subject == "" {
			t.Fatalf("decoded a message without a subject from %q", raw)
		}
		// A well-formed answer round-trips.
		if subject == "" {
			return
		}
		ts := time.Unix(0, int64(seq%(1<<62))).UTC()
		var resp messageGetResponse
		resp.Message = &struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		}{Subject: subject, Sequence: seq, Data: data, Time: ts}
		enc, err := json.Marshal(resp)
		if err != nil {
			return // not a valid JSON string (invalid UTF-8 is replaced, never refused)
		}
		got, err := decodeMessageGet(enc)
		if err != nil || got == nil {
			t.Fatalf("well-formed answer %s: %v, %v", enc, got, err)
		}
		var want struct {
			Message struct {
				Subject string `json:"subject"`
			} `json:"message"`
		}
		_ = json.Unmarshal(enc, &want)
		if got.Subject != want.Message.Subject || got.Sequence != seq || string(got.Data) != string(data) || !got.Time.Equal(ts) {
			t.Fatalf("round trip of %s gave %+v", enc, got)
		}
	})
}

// FuzzFromDirect: whatever headers a direct-get responder sends, reading
// them never panics; a message read has a subject and the sequence its
// header gave, and none of the direct-get headers is left for the handler.
func FuzzFromDirect(f *testing.F) {
	f.Add("orders.p1.x", "7", "2026-12-07T10:00:00.123456789Z", "K", "v", []byte("hi"))
	f.Add("", "7", "2026-12-07T10:00:00Z", "", "", []byte(nil))
	f.Add("a", "-1", "yesterday", "Nats-Num-Pending", "3", []byte{})
	f.Add("a", "18446744073709551615", "2026-12-07T10:00:00Z", "Nats-Stream", "S", []byte("x"))
	f.Fuzz(func(t *testing.T, subject, seq, ts, key, value string, data []byte) {
		h := nats.Header{}
		if key != "" {
			h.Add(key, value)
		}
		h.Set(jetstream.SubjectHeader, subject)
		h.Set(jetstream.SequenceHeader, seq)
		h.Set(jetstream.TimeStampHeaer, ts)
		h.Set(jetstream.StreamHeader, "ORDERS")
		m, err := fromDirect(&nats.Msg{Header: h, Data: data})
		if err != nil {
			return
		}
		if m.Subject == "" {
			t.Fatal("a message without a subject")
		}
		for _, k := range directGetHeaders {
			if m.Header.Get(k) != "" {
				t.Fatalf("direct-get header %s left for the handler: %v", k, m.Header)
			}
		}
	})
}
