package fsm

import (
	"fmt"
	"strconv"
	"strings"
)

// Every command and event body describes its fields exactly once, in its walk
// method: one call per field, in encoding order, naming the field's kind. A
// walker then does one of four things with that description: encode the body,
// decode it, check it against the limits (limits.go) and the Config, or format
// it as "key=value" text. The limit of a field kind is thus the same for the
// decoder and for the check, and a body that passes the check always decodes.
//
// Each kind's four behaviours sit together in one method below; the body types
// only list their fields.

// walkMode selects what a walker does.
type walkMode uint8

const (
	walkEncode walkMode = 1 + iota
	walkDecode
	walkCheck
	walkFormat
)

// walker is the one visitor every walk method is given.
type walker struct {
	mode walkMode
	enc  *encoder
	dec  *decoder

	// cfg bounds counts and weights when checking.
	cfg *Config
	// err is the first problem the check found; later fields are not checked.
	err *RejectError
	// path is the position of the field being checked ("items", 3), for
	// messages; it is turned into text only when a check fails.
	path []pathElem

	sb *strings.Builder
}

type pathElem struct {
	name  string
	index int // -1: a field, not a list element
}

// fieldOpt adjusts one field's check or format.
type fieldOpt uint8

const (
	// optional: the zero value is allowed (an empty id, a zero number).
	optional fieldOpt = 1 << iota
	// omitZero: the format leaves the field out when it is zero.
	omitZero
	// hidden: the format never shows the field.
	hidden
	// asRelease: the format shows an empty worker id as "(release)" rather
	// than "(none)".
	asRelease
)

// fail records the first check failure, naming the field's path.
func (w *walker) fail(name string, code Code, format string, args ...any) {
	if w.err != nil {
		return
	}
	var sb strings.Builder
	for _, p := range w.path {
		if p.index >= 0 {
			fmt.Fprintf(&sb, "[%d]", p.index)
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(p.name)
	}
	if name != "" {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(name)
	}
	w.err = &RejectError{Code: code, Msg: sb.String() + ": " + fmt.Sprintf(format, args...)}
}

// failWith records a rejection from one of the Check functions under the
// field's name.
func (w *walker) failWith(name string, err *RejectError) {
	if err != nil {
		w.fail(name, err.Code, "%s", err.Msg)
	}
}

// kv writes one " key=value" pair when formatting.
func (w *walker) kv(name string, v string) {
	w.sb.WriteByte(' ')
	w.sb.WriteString(name)
	w.sb.WriteByte('=')
	w.sb.WriteString(v)
}

// id is a worker, partition or node id: at most MaxIDLen bytes, checked with
// check unless optional allows it to be empty.
func (w *walker) id(name string, v *string, o fieldOpt, check func(string) *RejectError) {
	switch w.mode {
	case walkEncode:
		w.enc.str(*v)
	case walkDecode:
		*v = w.dec.strMax(MaxIDLen)
	case walkCheck:
		if w.err == nil && !(o&optional != 0 && *v == "") {
			w.failWith(name, check(*v))
		}
	case walkFormat:
		switch {
		case o&hidden != 0 || (o&omitZero != 0 && *v == ""):
		case *v == "" && o&asRelease != 0:
			w.kv(name, "(release)")
		case *v == "":
			w.kv(name, "(none)")
		default:
			w.kv(name, *v)
		}
	}
}

func (w *walker) worker(name string, v *WorkerID, o fieldOpt) {
	w.id(name, (*string)(v), o, func(s string) *RejectError { return checkWorkerID(WorkerID(s)) })
}

func (w *walker) partition(name string, v *PartitionID, o fieldOpt) {
	w.id(name, (*string)(v), o, func(s string) *RejectError { return checkPartitionID(PartitionID(s)) })
}

func (w *walker) node(name string, v *string, o fieldOpt) {
	w.id(name, v, o, func(s string) *RejectError {
		if !validID(s) {
			return reject(CodeInvalidArgument, "invalid node id %s", clip(s))
		}
		return nil
	})
}

// text is free text (actor, cause, reason, address): at most max bytes of
// printable UTF-8, possibly empty.
func (w *walker) text(name string, v *string, max int, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.str(*v)
	case walkDecode:
		*v = w.dec.strMax(max)
	case walkCheck:
		switch {
		case w.err != nil:
		case *v == "" && o&optional == 0:
			w.fail(name, CodeInvalidArgument, "required")
		case len(*v) > max:
			w.fail(name, CodeInvalidArgument, "%d bytes, at most %d", len(*v), max)
		case !printable(*v):
			w.fail(name, CodeInvalidArgument, "control characters or invalid UTF-8 in %s", clip(*v))
		}
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && *v == "") {
			w.kv(name, *v)
		}
	}
}

// requestID is a command's request id: empty (no dedupe) or CheckRequestID's
// form.
func (w *walker) requestID(name string, v *string) {
	if w.mode == walkCheck {
		if w.err == nil && *v != "" {
			w.failWith(name, asRejectError(CheckRequestID(*v)))
		}
		return
	}
	w.text(name, v, MaxRequestIDLen, optional|omitZero)
}

// u64 is an unsigned number (epoch, sequence, incarnation, index, digest).
func (w *walker) u64(name string, v *uint64, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.uvarint(*v)
	case walkDecode:
		*v = w.dec.uvarint()
	case walkCheck:
		if w.err == nil && *v == 0 && o&optional == 0 {
			w.fail(name, CodeInvalidArgument, "required (non-zero)")
		}
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && *v == 0) {
			w.kv(name, strconv.FormatUint(*v, 10))
		}
	}
}

func (w *walker) epoch(name string, v *Epoch, o fieldOpt)   { w.u64(name, (*uint64)(v), o) }
func (w *walker) seq(name string, v *StreamSeq, o fieldOpt) { w.u64(name, (*uint64)(v), o) }
func (w *walker) incarnation(name string, v *Incarnation, o fieldOpt) {
	w.u64(name, (*uint64)(v), o)
}

// handoff is a handoff id, formatted "h<n>".
func (w *walker) handoff(name string, v *HandoffID, o fieldOpt) {
	if w.mode == walkFormat {
		if o&hidden == 0 && !(o&omitZero != 0 && *v == 0) {
			w.kv(name, v.String())
		}
		return
	}
	w.u64(name, (*uint64)(v), o)
}

// u32 is an unsigned 32-bit number.
func (w *walker) u32(name string, v *uint32, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.uvarint(uint64(*v))
	case walkDecode:
		*v = w.dec.u32()
	case walkCheck:
		if w.err == nil && *v == 0 && o&optional == 0 {
			w.fail(name, CodeInvalidArgument, "required (non-zero)")
		}
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && *v == 0) {
			w.kv(name, strconv.FormatUint(uint64(*v), 10))
		}
	}
}

// weight is a worker's or partition's weight: 0 means 1, at most
// Config.MaxWeight.
func (w *walker) weight(name string, v *uint32) {
	switch w.mode {
	case walkEncode:
		w.enc.uvarint(uint64(*v))
	case walkDecode:
		*v = w.dec.u32()
	case walkCheck:
		if w.err == nil && *v > w.cfg.MaxWeight {
			w.fail(name, CodeInvalidArgument, "%d above %d", *v, w.cfg.MaxWeight)
		}
	case walkFormat:
		w.kv(name, strconv.FormatUint(uint64(*v), 10))
	}
}

// nanos is a signed time or duration in nanoseconds, within [lo, hi] when
// checked.
func (w *walker) nanos(name string, v *int64, lo, hi int64, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.varint(*v)
	case walkDecode:
		*v = w.dec.varint()
	case walkCheck:
		if w.err == nil && (*v < lo || *v > hi) {
			w.fail(name, CodeInvalidArgument, "%d out of range %d to %d", *v, lo, hi)
		}
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && *v == 0) {
			w.kv(name, strconv.FormatInt(*v, 10))
		}
	}
}

func (w *walker) flag(name string, v *bool, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.bool(*v)
	case walkDecode:
		*v = w.dec.bool()
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && !*v) {
			w.kv(name, strconv.FormatBool(*v))
		}
	}
}

// enumNames names the values of one of the package's 1-based enums.
type enumNames interface {
	name(v uint8) string
	valid(v uint8) bool
}

// commandNames names command types, for events that record one.
type commandNames struct{}

func (commandNames) name(v uint8) string { return CommandType(v).String() }
func (commandNames) valid(v uint8) bool  { return v != 0 && CommandType(v) < cmdTypeEnd }

// enum is one of the package's 1-based enums.
func (w *walker) enum(name string, v *uint8, names enumNames, o fieldOpt) {
	switch w.mode {
	case walkEncode:
		w.enc.u8(*v)
	case walkDecode:
		*v = w.dec.u8()
	case walkCheck:
		if w.err == nil && !names.valid(*v) && !(o&optional != 0 && *v == 0) {
			w.fail(name, CodeInvalidArgument, "invalid value %d", *v)
		}
	case walkFormat:
		if o&hidden == 0 && !(o&omitZero != 0 && *v == 0) {
			w.kv(name, names.name(*v))
		}
	}
}

// list walks a slice: a count, then each element. max bounds the count when
// checking (nil: no bound beyond the input's size); when decoding, the count is
// bounded by the bytes left, at the smallest encoding of one element.
func list[T any](w *walker, name string, s *[]T, max func(*Config) int, each func(*walker, *T)) {
	switch w.mode {
	case walkEncode:
		w.enc.uvarint(uint64(len(*s)))
	case walkDecode:
		var zero T
		min := encodedSize(func(z *walker) { each(z, &zero) })
		n := w.dec.count(max1(min))
		if n == 0 || w.dec.err != nil {
			*s = nil
			return
		}
		*s = make([]T, n)
	case walkCheck:
		if w.err != nil {
			return
		}
		if max != nil && len(*s) > max(w.cfg) {
			w.fail(name, CodeLimitExceeded, "%d elements, at most %d", len(*s), max(w.cfg))
			return
		}
	}
	w.path = append(w.path, pathElem{name: name, index: -1})
	for i := range *s {
		if w.mode == walkDecode && w.dec.err != nil {
			*s = nil
			break
		}
		if w.mode == walkCheck {
			if w.err != nil {
				break
			}
			w.path = append(w.path, pathElem{index: i})
		}
		each(w, &(*s)[i])
		if w.mode == walkCheck {
			w.path = w.path[:len(w.path)-1]
		}
	}
	w.path = w.path[:len(w.path)-1]
}

// nested walks a struct element of a list under its own name when formatting,
// as "name={k=v ...}".
func (w *walker) nested(name string, fields func()) {
	if w.mode != walkFormat {
		fields()
		return
	}
	w.sb.WriteByte(' ')
	w.sb.WriteString(name)
	w.sb.WriteString("={")
	inner := strings.Builder{}
	outer := w.sb
	w.sb = &inner
	fields()
	w.sb = outer
	w.sb.WriteString(strings.TrimPrefix(inner.String(), " "))
	w.sb.WriteByte('}')
}

// formatWalk renders name followed by the " key=value" pairs of fields.
func formatWalk(name string, fields func(*walker)) string {
	var sb strings.Builder
	sb.WriteString(name)
	fields(&walker{mode: walkFormat, sb: &sb})
	return sb.String()
}

// encodedSize is the number of bytes fields encode to.
func encodedSize(fields func(*walker)) int {
	var e encoder
	fields(&walker{mode: walkEncode, enc: &e})
	return len(e.buf)
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// labels walks a worker's labels: each a key and a value, formatted
// "key:value", checked with CheckLabel and against Config.MaxLabels.
func (w *walker) labels(name string, v *[]Label) {
	if w.mode == walkFormat {
		if len(*v) == 0 {
			return
		}
		parts := make([]string, len(*v))
		for i, l := range *v {
			parts[i] = l.Key + ":" + l.Value
		}
		w.kv(name, strings.Join(parts, ","))
		return
	}
	list(w, name, v, func(c *Config) int { return c.MaxLabels }, func(w *walker, l *Label) {
		switch w.mode {
		case walkEncode:
			w.enc.str(l.Key)
			w.enc.str(l.Value)
		case walkDecode:
			l.Key = w.dec.strMax(MaxLabelKeyLen)
			l.Value = w.dec.strMax(MaxLabelValueLen)
		case walkCheck:
			if w.err == nil {
				w.failWith("", asRejectError(CheckLabel(*l)))
			}
		}
	})
}

// subjects walks a partition's subjects, formatted comma-separated, each at
// most MaxSubjectLen bytes and a valid subject, at most Config.MaxSubjects.
func (w *walker) subjects(name string, v *[]string) {
	if w.mode == walkFormat {
		w.kv(name, strings.Join(*v, ","))
		return
	}
	list(w, name, v, func(c *Config) int { return c.MaxSubjects }, func(w *walker, s *string) {
		switch w.mode {
		case walkEncode:
			w.enc.str(*s)
		case walkDecode:
			*s = w.dec.strMax(MaxSubjectLen)
		case walkCheck:
			if w.err == nil && !validSubject(*s) {
				w.fail("", CodeInvalidArgument, "invalid subject %s", clip(*s))
			}
		}
	})
}

// lingerers walks an event's lingerers, formatted "worker@incarnation".
func (w *walker) lingerers(name string, v *[]Lingerer) {
	if w.mode == walkFormat {
		for _, l := range *v {
			w.kv(name, string(l.Worker)+"@"+l.Incarnation.String())
		}
		return
	}
	list(w, name, v, nil, func(w *walker, l *Lingerer) {
		w.worker("worker", &l.Worker, 0)
		w.incarnation("incarnation", &l.Incarnation, 0)
	})
}

// asRejectError unwraps the *RejectError the exported Check functions return.
func asRejectError(err error) *RejectError {
	if err == nil {
		return nil
	}
	if r, ok := err.(*RejectError); ok {
		return r
	}
	return reject(CodeInvalidArgument, "%v", err)
}

// clip quotes s for a message, shortened to its first 64 bytes: a rejection
// must not carry back (or into the audit log) the oversized value it refuses.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}
