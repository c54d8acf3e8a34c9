package fsm

import "fmt"

// eventVersion is the first byte of every encoded event. Events are written by
// the state machine itself (and kept in the audit log and snapshots, which
// carry their own checksums), so they have no checksum of their own.
const eventVersion = 1

// EncodeEvent returns the binary form of ev: version, type tag, meta, body. The
// audit log stores events in this form.
func EncodeEvent(ev Event) []byte {
	var e encoder
	appendEvent(&e, ev)
	return e.buf
}

func appendEvent(e *encoder, ev Event) {
	e.u8(eventVersion)
	e.u8(uint8(ev.Body.Type()))
	w := walker{mode: walkEncode, enc: e}
	ev.Meta.walk(&w)
	ev.Body.walk(&w)
}

// DecodeEvent parses the binary form of an event; like DecodeCommand it returns
// errors for bad input and never panics.
func DecodeEvent(b []byte) (Event, error) {
	d := decoder{buf: b}
	ev := decodeEvent(&d)
	if err := d.done(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func decodeEvent(d *decoder) Event {
	v := d.u8()
	if d.err == nil && v != eventVersion {
		d.err = fmt.Errorf("%w: event version %d", ErrUnsupportedVersion, v)
	}
	t := EventType(d.u8())
	if d.err != nil {
		return Event{}
	}
	if t == 0 || t >= evTypeEnd {
		d.fail("event type %d", t)
		return Event{}
	}
	var ev Event
	w := walker{mode: walkDecode, dec: d}
	ev.Meta.walk(&w)
	ev.Body = eventTypes[t].zero.walk(&w)
	if d.err != nil {
		return Event{}
	}
	return ev
}
