package server

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The API's rules for JSON request bodies (docs/api.md, "Request bodies").
// encoding/json alone matches keys case-insensitively, takes the last of
// duplicate keys, turns a missing or null field into its zero value and accepts
// any JSON value at the top; each of those once turned a malformed request into
// a different, valid one ({} resumed rebalancing, {"PAUSED":false} too). So a
// body is first walked token by token alongside the target type, which checks
// the rules and records which fields are present, and only then decoded by
// encoding/json, which by then can no longer guess.
//
// The rules:
//   - the body is one JSON object in valid UTF-8, with nothing after it;
//   - every key is the exact json name of a field of the target struct (case
//     matters), at most once per object, in nested objects and in the objects
//     of arrays too;
//   - a field is required unless its json tag has omitempty or omitzero; a
//     required field must be present and not null (null for an optional
//     field is the same as leaving it out; null is never an array element);
//   - a number going into an integer must be an integer literal (no fraction,
//     no exponent) in the integer's range, and a non-negative one for unsigned
//     integers;
//   - types that decode themselves (json.Unmarshaler, encoding.TextUnmarshaler,
//     such as fsm.EventType) are leaves: encoding/json checks their values.

// maxDepth bounds the nesting of objects and arrays the walk follows: the
// request types nest three levels at most, and a recursive type must not let a
// body drive the recursion.
const maxDepth = 32

// decodeError is a body that breaks the rules. path is the JSON path of the
// offending value ("items[3].epoch"), empty for the body itself.
type decodeError struct {
	path string
	msg  string
}

func (e *decodeError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

// decodeStrict decodes data, one JSON object, into v, a non-nil pointer to a
// struct, under the rules above. It returns a *decodeError naming the JSON
// path of the first problem, or encoding/json's error for a value of a leaf
// type that does not decode. v is changed only if it returns nil.
func decodeStrict(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("server: decodeStrict needs a pointer to a struct, not %T", v)
	}
	if !utf8.Valid(data) {
		return &decodeError{msg: "body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec}
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return &decodeError{msg: "empty body: expected a JSON object"}
	}
	if err != nil {
		return syntaxError("", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &decodeError{msg: "body must be a JSON object, not " + describe(tok)}
	}
	if err := w.object(rv.Elem().Type(), "", 1); err != nil {
		return err
	}
	// Anything but white space after the object is an error: a stray '}'
	// or a second object would otherwise be ignored.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &decodeError{msg: "trailing data after the JSON object"}
	}
	// The walk proved the shape; encoding/json now fills v, and checks the
	// leaves' own syntax. Decoding into a fresh value first keeps v
	// unchanged on an error.
	fresh := reflect.New(rv.Elem().Type())
	if err := json.Unmarshal(data, fresh.Interface()); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &decodeError{path: te.Field, msg: fmt.Sprintf("want %s, got %s", te.Type, te.Value)}
		}
		return &decodeError{msg: err.Error()}
	}
	rv.Elem().Set(fresh.Elem())
	return nil
}

// walker checks a token stream against a type.
type walker struct {
	dec *json.Decoder
}

// object walks the members of an object whose '{' was read, into struct type
// t, up to and including its '}'.
func (w *walker) object(t reflect.Type, path string, depth int) error {
	fields := fieldsOf(t)
	seen := make([]bool, len(fields))
	for {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(path, err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			break
		}
		key, _ := tok.(string) // the decoder allows only strings as keys
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if i < 0 {
			return &decodeError{path: path, msg: unknownKey(key, fields)}
		}
		if seen[i] {
			return &decodeError{path: path, msg: fmt.Sprintf("duplicate key %q", key)}
		}
		seen[i] = true
		f := fields[i]
		tok, err = w.dec.Token()
		if err != nil {
			return syntaxError(join(path, key), err)
		}
		if tok == nil {
			if f.required {
				return &decodeError{path: join(path, key), msg: "required; null given"}
			}
			continue
		}
		if f.quoted {
			// `json:",string"`: the value is a string that encoding/json
			// parses as the field's type.
			if _, ok := tok.(string); !ok {
				return &decodeError{path: join(path, key), msg: "want a quoted value, got " + describe(tok)}
			}
			continue
		}
		if err := w.value(f.typ, join(path, key), tok, depth); err != nil {
			return err
		}
	}
	for i, f := range fields {
		if f.required && !seen[i] {
			return &decodeError{path: join(path, f.name), msg: "required"}
		}
	}
	return nil
}

// value checks the value that starts with tok (not null) against type t.
func (w *walker) value(t reflect.Type, path string, tok json.Token, depth int) error {
	if depth > maxDepth {
		return &decodeError{path: path, msg: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	if pt := reflect.PointerTo(t); pt.Implements(reflect.TypeFor[json.Unmarshaler]()) || pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return w.skip(path, tok)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.value(t.Elem(), path, tok, depth)
	case reflect.Interface:
		return w.skip(path, tok)
	case reflect.Struct:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return &decodeError{path: path, msg: "want an object, got " + describe(tok)}
		}
		return w.object(t, path, depth+1)
	case reflect.Map:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return &decodeError{path: path, msg: "want an object, got " + describe(tok)}
		}
		return w.mapMembers(t, path, depth+1)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := tok.(string); !ok { // []byte is base64 text
				return &decodeError{path: path, msg: "want a base64 string, got " + describe(tok)}
			}
			return nil
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return &decodeError{path: path, msg: "want an array, got " + describe(tok)}
		}
		return w.array(t.Elem(), path, depth+1)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return &decodeError{path: path, msg: "want a string, got " + describe(tok)}
		}
		return nil
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return &decodeError{path: path, msg: "want true or false, got " + describe(tok)}
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok || !integerLiteral(string(n)) {
			return &decodeError{path: path, msg: "want an integer, got " + describe(tok)}
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return &decodeError{path: path, msg: fmt.Sprintf("%s out of range of a %d-bit integer", n, t.Bits())}
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := tok.(json.Number)
		if !ok || !integerLiteral(string(n)) || strings.HasPrefix(string(n), "-") {
			return &decodeError{path: path, msg: "want a non-negative integer, got " + describe(tok)}
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return &decodeError{path: path, msg: fmt.Sprintf("%s out of range 0 to %d", n, uint64(1)<<t.Bits()-1)}
		}
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return &decodeError{path: path, msg: "want a number, got " + describe(tok)}
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			return &decodeError{path: path, msg: fmt.Sprintf("%s out of range of a %d-bit float", n, t.Bits())}
		}
		return nil
	}
	return &decodeError{path: path, msg: fmt.Sprintf("cannot decode into %s", t)}
}

// array walks the elements of an array whose '[' was read, up to and
// including its ']'.
func (w *walker) array(elem reflect.Type, path string, depth int) error {
	for i := 0; ; i++ {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(path, err)
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return nil
		}
		p := path + "[" + strconv.Itoa(i) + "]"
		if tok == nil {
			return &decodeError{path: p, msg: "null is not allowed here"}
		}
		if err := w.value(elem, p, tok, depth); err != nil {
			return err
		}
	}
}

// mapMembers walks the members of an object decoded into a map: any keys,
// each once, values of the map's element type.
func (w *walker) mapMembers(t reflect.Type, path string, depth int) error {
	seen := map[string]bool{}
	for {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(path, err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, _ := tok.(string)
		if seen[key] {
			return &decodeError{path: path, msg: fmt.Sprintf("duplicate key %q", clip(key))}
		}
		seen[key] = true
		if tok, err = w.dec.Token(); err != nil {
			return syntaxError(join(path, key), err)
		}
		if tok == nil {
			return &decodeError{path: join(path, key), msg: "null is not allowed here"}
		}
		if err := w.value(t.Elem(), join(path, key), tok, depth); err != nil {
			return err
		}
	}
}

// skip consumes the rest of a value that starts with tok, without recursion.
func (w *walker) skip(path string, tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for open := 1; open > 0; {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(path, err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				open++
			} else {
				open--
			}
		}
	}
	return nil
}

// field is one JSON member of a struct type.
type field struct {
	name     string
	typ      reflect.Type
	required bool
	quoted   bool // `json:",string"`
}

// fieldsOf lists the JSON members of struct type t as encoding/json sees them:
// exported fields by their json names, those of embedded structs promoted
// (the shallower, then the tagged one wins a name; a tie hides both).
func fieldsOf(t reflect.Type) []field {
	type cand struct {
		field
		depth  int
		tagged bool
	}
	var all []cand
	var walk func(t reflect.Type, depth int, visited map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, visited map[reflect.Type]bool) {
		if visited[t] {
			return
		}
		visited[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, depth+1, visited)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = sf.Name
			}
			optional := false
			quoted := false
			for o := range strings.SplitSeq(opts, ",") {
				switch o {
				case "omitempty", "omitzero":
					optional = true
				case "string":
					switch ft.Kind() {
					case reflect.Bool, reflect.String,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64:
						quoted = true
					}
				}
			}
			all = append(all, cand{field: field{name: name, typ: ft, required: !optional, quoted: quoted}, depth: depth, tagged: tagged})
		}
	}
	walk(t, 0, map[reflect.Type]bool{})
	var out []field
	for i, c := range all {
		dominant, tie := true, false
		for j, o := range all {
			if i == j || o.name != c.name {
				continue
			}
			switch {
			case o.depth < c.depth, o.depth == c.depth && o.tagged && !c.tagged:
				dominant = false
			case o.depth == c.depth && o.tagged == c.tagged:
				tie = true
			}
		}
		if dominant && !tie {
			out = append(out, c.field)
		}
	}
	return out
}

// unknownKey describes a key the struct does not have, suggesting the field
// it was probably meant to be.
func unknownKey(key string, fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	msg := fmt.Sprintf("unknown key %q", clip(key))
	if len(key) <= 64 {
		norm := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == '_' || r == '-' || r == ' ' {
					return -1
				}
				return r
			}, strings.ToLower(s))
		}
		for _, n := range names {
			// A typo of a few letters is caught too, but only for names
			// long enough that it cannot be a different word.
			if norm(n) == norm(key) || editDistance(n, key) <= len(n)/4 {
				return msg + fmt.Sprintf(" (did you mean %q?)", n)
			}
		}
	}
	if len(names) == 0 {
		return msg + " (this object takes no keys)"
	}
	return msg + " (known: " + strings.Join(names, ", ") + ")"
}

// editDistance is the optimal-string-alignment distance of two short
// strings: insertions, deletions, substitutions and swaps of neighbours
// ("wroker") each count one.
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		pp, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, pp
	}
	return rows[1][len(b)]
}

// integerLiteral reports whether a JSON number is written without a fraction
// or an exponent.
func integerLiteral(n string) bool {
	return !strings.ContainsAny(n, ".eE")
}

// describe names a token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "the number " + clip(string(v))
	case string:
		return "a string"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
	}
	return fmt.Sprint(tok)
}

// syntaxError reports malformed JSON at path.
func syntaxError(path string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &decodeError{path: path, msg: "malformed JSON: unexpected end of body"}
	}
	return &decodeError{path: path, msg: "malformed JSON: " + err.Error()}
}

// join appends an object key to a JSON path.
func join(path, key string) string {
	key = clip(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// clip shortens a string quoted from a body so that an error message stays
// small.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
