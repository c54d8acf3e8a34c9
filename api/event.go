package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/batonhq/baton/fsm"
)

// Event is an audit event on the wire: the meta fields, "type", "at" (the
// leader time as RFC 3339) and the body's fields, flattened into one object so
// that `jq '.partition'` works on every event that has one.
type Event struct {
	fsm.Event
}

// MarshalJSON flattens meta and body into one object.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Body == nil {
		return nil, fmt.Errorf("api: event at %d has no body", e.Index)
	}
	out := map[string]json.RawMessage{}
	for _, part := range []any{e.Meta, e.Body} {
		b, err := json.Marshal(part)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	t, _ := json.Marshal(e.Body.Type().String())
	out["type"] = t
	at, _ := json.Marshal(time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano))
	out["at"] = at
	return json.Marshal(out)
}

// UnmarshalJSON reads the flattened form back.
func (e *Event) UnmarshalJSON(b []byte) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	t, err := fsm.ParseEventType(head.Type)
	if err != nil {
		return err
	}
	zero, ok := fsm.NewEventBody(t)
	if !ok {
		return fmt.Errorf("api: no body type for event %s", t)
	}
	body := reflect.New(reflect.TypeOf(zero))
	if err := json.Unmarshal(b, body.Interface()); err != nil {
		return fmt.Errorf("api: event %s: %w", t, err)
	}
	if err := json.Unmarshal(b, &e.Meta); err != nil {
		return err
	}
	e.Body = body.Elem().Interface().(fsm.EventBody)
	return nil
}

// Events wraps fsm events for the wire.
func Events(evs []fsm.Event) []Event {
	out := make([]Event, len(evs))
	for i, ev := range evs {
		out[i] = Event{ev}
	}
	return out
}
