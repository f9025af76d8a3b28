package function

import (
	"bytes"
	"encoding/json"
	"errors"
)

var (
	errInvalidJSON = errors.New("invalid JSON")
	errNotObject   = errors.New("expected a JSON object")
)

// ObjectReader walks the properties of one JSON object in document order, as Jackson's parser
// feeds a bean deserializer: keys are exact (case-sensitive) after unescaping, every occurrence
// of a duplicate key is reported (so the caller's last assignment wins, as in Jackson), and
// values are handed over as raw JSON, never decoded. It does not allocate, except to unescape a
// key that contains a backslash. The zero ObjectReader has no properties.
type ObjectReader struct {
	data  []byte // the whole document, already validated
	pos   int    // offset just after the last value read (or the opening brace)
	key   []byte
	value []byte
}

// ReadObject validates data (one JSON value with optional surrounding whitespace) and returns a
// reader over its properties. Invalid JSON and any value other than an object, including null,
// are errors. Key and Value alias data.
func ReadObject(data []byte) (ObjectReader, error) {
	if !json.Valid(data) {
		return ObjectReader{}, errInvalidJSON
	}
	i := skipSpace(data, 0)
	if data[i] != '{' { // valid JSON is never only whitespace
		return ObjectReader{}, errNotObject
	}
	return ObjectReader{data: data, pos: i + 1}, nil
}

// Next advances to the next property and reports whether there is one.
func (r *ObjectReader) Next() bool {
	// Every index below stays in range because data is valid JSON.
	i := skipSpace(r.data, r.pos)
	if i >= len(r.data) || r.data[i] == '}' {
		r.pos, r.key, r.value = len(r.data), nil, nil
		return false
	}
	if r.data[i] == ',' {
		i = skipSpace(r.data, i+1)
	}
	end, escaped := stringEnd(r.data, i)
	r.key = r.data[i+1 : end-1]
	if escaped {
		var k string
		if err := json.Unmarshal(r.data[i:end], &k); err == nil {
			r.key = []byte(k)
		}
	}
	i = skipSpace(r.data, skipSpace(r.data, end)+1) // past the colon
	r.pos = valueEnd(r.data, i)
	r.value = r.data[i:r.pos]
	return true
}

// Key is the current property's name, unescaped. It is valid until the next call to Next.
func (r *ObjectReader) Key() []byte { return r.key }

// Value is the current property's raw JSON value, without surrounding whitespace.
func (r *ObjectReader) Value() json.RawMessage { return r.value }

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the offset just past the JSON string starting at data[i] (its opening quote)
// and whether the string contains an escape sequence.
func stringEnd(data []byte, i int) (end int, escaped bool) {
	j := i + 1
	for {
		q := bytes.IndexByte(data[j:], '"')
		if b := bytes.IndexByte(data[j:j+q], '\\'); b >= 0 {
			escaped = true
			j += b + 2 // the backslash and the character it escapes
			continue
		}
		return j + q + 1, escaped
	}
}

// valueEnd returns the offset just past the JSON value starting at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := stringEnd(data, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(data); {
			switch data[j] {
			case '"':
				j, _ = stringEnd(data, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(data)
	default: // number, true, false, null
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}
