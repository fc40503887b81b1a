package ragserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// apiError is an error answered to a client: a status and a message that is
// safe to show.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, errorBody{Error: e.Message, Status: e.Status})
}

// jsonMediaType reports whether a Content-Type may carry a JSON body. An
// absent type and the form type that `curl -d` sends by default are
// accepted, because the body is parsed as JSON anyway.
func jsonMediaType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/x-www-form-urlencoded"
}

// decodeJSON decodes the body of r into dst: one JSON object, no unknown
// fields, no key twice in one object (at any depth), at most limit bytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) *apiError {
	if !jsonMediaType(r.Header.Get("Content-Type")) {
		return &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Type %q: send application/json", r.Header.Get("Content-Type"))}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return badRequest("could not read the request body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return badRequest("request body must contain a single JSON object")
	}
	// encoding/json keeps the last of duplicate keys; a request that says
	// two things is refused instead. body is known to be valid JSON here.
	if key, path, ok := duplicateKey(body); ok {
		if path == "" {
			return badRequest("duplicate key %q in the request object", key)
		}
		return badRequest("duplicate key %q in %s", key, path)
	}
	return nil
}

// duplicateKey returns the first key that appears twice in one object of
// data, which must hold valid JSON, and the path of that object
// ("" for the top level, e.g. "documents[1].metadata").
func duplicateKey(data []byte) (key, path string, found bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	key, path, found, _ = scanDuplicates(dec, "")
	return key, path, found
}

func scanDuplicates(dec *json.Decoder, path string) (key, where string, found bool, err error) {
	tok, err := dec.Token()
	if err != nil {
		return "", "", false, err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", "", false, err
			}
			k, _ := kt.(string)
			if seen[k] {
				return k, path, true, nil
			}
			seen[k] = true
			child := k
			if path != "" {
				child = path + "." + k
			}
			if key, where, found, err := scanDuplicates(dec, child); found || err != nil {
				return key, where, found, err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if key, where, found, err := scanDuplicates(dec, path+"["+strconv.Itoa(i)+"]"); found || err != nil {
				return key, where, found, err
			}
		}
		_, err = dec.Token() // ']'
	}
	return "", "", false, err
}

func tooLarge(limit int64) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit)}
}

func decodeError(err error, limit int64) *apiError {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is truncated JSON")
	case errors.As(err, &syntaxErr):
		return badRequest("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("request body must be a JSON object, not %s", typeErr.Value)
		}
		return badRequest("field %q must be %s, not %s", typeErr.Field, jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("invalid JSON body")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "float64", "float32":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return kind
}
