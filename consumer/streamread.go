package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading a partition's stored messages without a consumer, for the catch-up.
//
// Direct gets are cheap and batched, but every replica of the stream answers
// them, and so does every mirror created with MirrorDirect, and those may lag
// the stream leader (docs/jetstream-facts.md, fact 19). A lagging responder
// holds a prefix of the stream: it can miss the newest messages but never
// makes one up. A catch-up that ended on such a miss would never deliver the
// messages between the responder's end and the consumer's cursor. So whenever
// a direct get finds nothing, the message-get API, which only the stream
// leader answers, has the last word.

// streamReader reads the stored messages of one subject in stream order.
type streamReader struct {
	nc *nats.Conn
	// direct is the direct-get subject, empty when the stream does not allow
	// direct gets; leader is the message-get API subject.
	direct, leader string
	batch          int
	maxBytes       int
	// stale counts direct reads that found nothing where the leader had a
	// message.
	stale func()
}

// Headers a direct get adds to a stored message; they are removed so that a
// handler sees the same headers whichever way a message reached it.
var directGetHeaders = []string{
	jetstream.StreamHeader, jetstream.SubjectHeader, jetstream.SequenceHeader,
	jetstream.TimeStampHeaer, headerNumPending, jetstream.LastSequenceHeader,
}

const (
	// directTimeout bounds a direct get so that a silent responder leaves
	// time to ask the leader.
	directTimeout    = 2 * time.Second
	headerNumPending = "Nats-Num-Pending"
	headerStatus     = "Status"
	headerDesc       = "Description"
)

func newStreamReader(js jetstream.JetStream, stream string, allowDirect bool, batch int, stale func()) *streamReader {
	s := &streamReader{
		nc:       js.Conn(),
		leader:   apiSubject(js, "STREAM.MSG.GET."+stream),
		batch:    batch,
		maxBytes: 1 << 20,
		stale:    stale,
	}
	if allowDirect {
		s.direct = directGetSubject(js, stream)
	}
	return s
}

// apiSubject is the JetStream API subject for op under js's prefix or domain,
// as nats.go forms it.
func apiSubject(js jetstream.JetStream, op string) string {
	o := js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "." + op
	case o.Domain != "":
		return "$JS." + o.Domain + ".API." + op
	}
	return jetstream.DefaultAPIPrefix + op
}

func directGetSubject(js jetstream.JetStream, stream string) string {
	return apiSubject(js, "DIRECT.GET."+stream)
}

// next returns stored messages of subject at or after seq, in stream order,
// at most the batch size of them. An empty result is the stream leader's
// word that there is none.
func (s *streamReader) next(ctx context.Context, subject string, seq uint64) ([]*jetstream.RawStreamMsg, error) {
	if s.direct != "" {
		// An error (no responder, a timeout) tells no more than finding
		// nothing: either way the leader decides, within what is left of ctx.
		dctx, cancel := context.WithTimeout(ctx, directTimeout)
		msgs, _ := s.directBatch(dctx, subject, seq)
		cancel()
		if len(msgs) > 0 {
			return msgs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	m, err := s.leaderNext(ctx, subject, seq)
	if err != nil || m == nil {
		return nil, err
	}
	if s.direct != "" && s.stale != nil {
		s.stale()
	}
	return []*jetstream.RawStreamMsg{m}, nil
}

// directGetRequest is the body of a direct get ($JS.API.DIRECT.GET.<stream>)
// and of the message-get API, which takes no batch.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// directBatch asks whichever responder the server picks for a batch of
// subject's messages from seq. The responder streams the messages, then an
// end-of-batch status; a server older than 2.11 answers one message without
// batch headers. Messages received before an error or the deadline are kept.
func (s *streamReader) directBatch(ctx context.Context, subject string, seq uint64) ([]*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(directGetRequest{Seq: seq, NextFor: subject, Batch: s.batch, MaxBytes: s.maxBytes})
	if err != nil {
		return nil, err
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(s.direct, inbox, body); err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return out, err
		}
		if status := m.Header.Get(headerStatus); status != "" && len(m.Data) == 0 {
			switch status {
			case "204", "404": // end of batch; no message at all
				return out, nil
			case "503":
				return out, nats.ErrNoResponders
			}
			return out, fmt.Errorf("direct get: status %s %s", status, m.Header.Get(headerDesc))
		}
		batched := m.Header.Get(headerNumPending) != ""
		rm, err := fromDirect(m)
		if err != nil {
			return out, err
		}
		out = append(out, rm)
		if !batched {
			return out, nil // a server without batch support sends just one
		}
	}
}

func fromDirect(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	h := m.Header
	seq, err := strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: sequence header: %w", err)
	}
	tm, err := time.Parse(time.RFC3339Nano, h.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: time header: %w", err)
	}
	subject := h.Get(jetstream.SubjectHeader)
	if subject == "" {
		return nil, errors.New("direct get: no subject header")
	}
	for _, k := range directGetHeaders {
		h.Del(k)
	}
	if len(h) == 0 {
		h = nil
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: h, Data: m.Data, Time: tm}, nil
}

// leaderNext asks the stream leader for the first message of subject at or
// after seq; nil when there is none.
func (s *streamReader) leaderNext(ctx context.Context, subject string, seq uint64) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(directGetRequest{Seq: seq, NextFor: subject})
	if err != nil {
		return nil, err
	}
	reply, err := s.nc.RequestWithContext(ctx, s.leader, body)
	if err != nil {
		return nil, err
	}
	return decodeMessageGet(reply.Data)
}

// messageGetResponse is the message-get API's answer.
type messageGetResponse struct {
	Error   *jetstream.APIError `json:"error"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs"`
		Data     []byte    `json:"data"`
		Time     time.Time `json:"time"`
	} `json:"message"`
}

// decodeMessageGet decodes the message-get API's answer: the message, nil
// when there is none (the leader's word), or the error it reports.
func decodeMessageGet(data []byte) (*jetstream.RawStreamMsg, error) {
	var resp messageGetResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := resp.Message
	if m.Subject == "" {
		return nil, errors.New("message get: no subject")
	}
	var h nats.Header
	if len(m.Header) > 0 {
		var err error
		if h, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("message get: headers: %w", err)
		}
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Header: h, Data: m.Data, Time: m.Time}, nil
}
