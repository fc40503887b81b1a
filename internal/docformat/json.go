package docformat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textFields are the fields that hold a record's text, in order of preference.
var textFields = []string{"text", "content", "body"}

// MaxIDBytes bounds the "id" of a JSON record (it becomes part of the source).
const MaxIDBytes = 128

// extractJSON reads a .json file (one record, or an array of records) or a
// .jsonl file (one record per line). Records that cannot be used are skipped
// with a reason; a file with no usable record is unreadable.
func extractJSON(name, ext string, data []byte) ([]Record, []Skipped, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("%w: not UTF-8 text", ErrUnreadable)
	}
	format := strings.TrimPrefix(ext, ".")
	var (
		recs    []Record
		skipped []Skipped
		ids     = map[string]string{} // id -> where it was first seen
		total   int                   // bytes of text so far
	)
	// add reads record n; single: the file is one record, which without
	// an id is named by the file name alone.
	// It reports false once the file has MaxRecords records: the rest is
	// skipped, with one reason.
	add := func(where string, raw json.RawMessage, n int, single bool) bool {
		if len(recs) >= MaxRecords {
			skipped = append(skipped, Skipped{Where: where + " and after", Reason: fmt.Sprintf("the file has more than %d records", MaxRecords)})
			return false
		}
		r, err := jsonRecord(raw)
		if err == nil && total+len(r.Text) > MaxTextBytes {
			err = fmt.Errorf("the file's text is more than %d bytes", MaxTextBytes)
		}
		if err == nil {
			id := r.Source
			switch {
			case id == "" && single:
				r.Source = name
			case id == "":
				id = strconv.Itoa(n)
				fallthrough
			default:
				if first, dup := ids[id]; dup {
					err = fmt.Errorf("id %q is also used by %s", id, first)
				} else {
					ids[id] = where
					r.Source = name + "#" + id
				}
			}
		}
		if err != nil {
			skipped = append(skipped, Skipped{Where: where, Reason: err.Error()})
			return true
		}
		total += len(r.Text)
		r.Metadata[KeyFormat] = format
		recs = append(recs, r)
		return true
	}

	if ext == ".jsonl" {
		n := 0
		for line := range bytes.Lines(data) {
			n++
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if !add(fmt.Sprintf("%s line %d", name, n), json.RawMessage(line), n, false) {
				break
			}
		}
	} else {
		trimmed := bytes.TrimSpace(data)
		switch {
		case len(trimmed) == 0:
			return nil, nil, fmt.Errorf("%w: the file is empty", ErrUnreadable)
		case trimmed[0] == '[':
			var items []json.RawMessage
			if err := json.Unmarshal(trimmed, &items); err != nil {
				return nil, nil, fmt.Errorf("%w: %s", ErrUnreadable, jsonError(err))
			}
			for i, raw := range items {
				if !add(fmt.Sprintf("%s record %d", name, i+1), raw, i+1, false) {
					break
				}
			}
		default:
			add(name, json.RawMessage(trimmed), 1, true)
		}
	}
	if len(recs) == 0 {
		switch {
		case len(skipped) == 1:
			return nil, skipped, fmt.Errorf("%w: %s", ErrUnreadable, skipped[0].Reason)
		case len(skipped) > 1:
			return nil, skipped, fmt.Errorf("%w: none of its %d records is usable (%s: %s)", ErrUnreadable, len(skipped), skipped[0].Where, skipped[0].Reason)
		default:
			return nil, nil, fmt.Errorf("%w: the file holds no record", ErrUnreadable)
		}
	}
	return recs, skipped, nil
}

// jsonRecord reads one record: an object with a text field. Its Source is
// the record's id ("" if it has none).
func jsonRecord(raw json.RawMessage) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Record{}, fmt.Errorf("a record must be a JSON object, not %s", ute.Value)
		}
		return Record{}, errors.New(jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, errors.New("more than one JSON value")
	}
	if obj == nil {
		return Record{}, errors.New("a record must be a JSON object, not null")
	}
	var r Record
	field := ""
	for _, f := range textFields {
		if v, ok := obj[f]; ok {
			s, isString := v.(string)
			if !isString {
				return Record{}, fmt.Errorf("field %q must be a string", f)
			}
			if strings.TrimSpace(s) == "" {
				continue
			}
			field, r.Text = f, s
			break
		}
	}
	if field == "" {
		return Record{}, fmt.Errorf("no text: none of the fields %s holds text", strings.Join(textFields, ", "))
	}
	if v, ok := obj["id"]; ok {
		id, err := recordID(v)
		if err != nil {
			return Record{}, err
		}
		r.Source = id
	}
	// Other scalar fields are metadata, in key order, within the limits.
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if k != "id" && k != field && !slices.Contains(textFields, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	r.Metadata = map[string]string{}
	for _, k := range keys {
		if len(r.Metadata) == MaxMetadataKeys {
			break
		}
		var v string
		switch x := obj[k].(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = strconv.FormatBool(x)
		default:
			continue // null, arrays and objects are not metadata
		}
		if strings.TrimSpace(k) == "" || len(k) > MaxMetadataKeyBytes || len(v) > MaxMetadataValueBytes ||
			strings.IndexFunc(k, unicode.IsControl) >= 0 {
			continue
		}
		r.Metadata[k] = v
	}
	return r, nil
}

// recordID checks the id of a record: a string or an integer that can be
// part of a source name.
func recordID(v any) (string, error) {
	var id string
	switch x := v.(type) {
	case string:
		id = x
	case json.Number:
		if _, err := x.Int64(); err != nil {
			return "", fmt.Errorf("field \"id\" must be a string or an integer, not %s", x)
		}
		id = x.String()
	default:
		return "", errors.New(`field "id" must be a string or an integer`)
	}
	switch {
	case strings.TrimSpace(id) == "":
		return "", errors.New(`field "id" is empty`)
	case len(id) > MaxIDBytes:
		return "", fmt.Errorf(`field "id" is longer than %d bytes`, MaxIDBytes)
	case strings.ContainsAny(id, "/\\"):
		return "", fmt.Errorf(`field "id" (%q) must not contain a slash`, id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return "", errors.New(`field "id" must not contain control characters`)
	}
	return id, nil
}

// jsonError says what is wrong with malformed JSON, on one line.
func jsonError(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	return oneLine("malformed JSON: "+err.Error(), 200)
}
