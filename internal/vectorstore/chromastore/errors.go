package chromastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	chhttp "github.com/amikos-tech/chroma-go/pkg/commons/http"

	"github.com/ragops/ragops/internal/vectorstore"
)

// wrap classifies the error of a Chroma call by what Chroma answered, not by
// its text. chroma-go returns a *ChromaError carrying the HTTP status (0 when
// no answer came: a network error, whose cause it keeps only as text).
//
//   - The caller's context ended: the error keeps context.DeadlineExceeded or
//     context.Canceled recognisable.
//   - No answer, 5xx, 408, 429, 401 and 403 (Chroma is down, overloaded or
//     not ours to use), or an answer that is not what the API promises (a
//     proxy's page, another Chroma version): vectorstore.ErrUnavailable.
//   - 404: the collection was deleted behind our back. The cached collection
//     is forgotten, so that the next call creates it again, and the call is
//     ErrUnavailable (trying again works).
//   - Any other 4xx, or a request the client library refused to send (it
//     validates requests before sending them): vectorstore.ErrInvalid. The
//     request was wrong (a vector of the wrong dimension, a filter Chroma
//     cannot express); sending it again cannot help.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("chroma %s: %w", op, err)
	}
	var kind error
	var ce *chhttp.ChromaError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ce):
		kind = statusKind(ce.ErrorCode)
		if ce.ErrorCode == http.StatusNotFound {
			s.mu.Lock()
			s.coll, s.vers = nil, nil
			s.mu.Unlock()
		}
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		kind = vectorstore.ErrUnavailable // an answer we cannot read
	default:
		kind = vectorstore.ErrInvalid // refused before it was sent
	}
	return fmt.Errorf("chroma %s: %w: %w", op, kind, err)
}

// statusKind classifies Chroma's HTTP status (0: no answer).
func statusKind(status int) error {
	switch {
	case status == 0, status >= 500, status == http.StatusNotFound,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests,
		status == http.StatusUnauthorized, status == http.StatusForbidden:
		return vectorstore.ErrUnavailable
	case status >= 400:
		return vectorstore.ErrInvalid
	}
	// chroma-go reports only statuses from 400 on; anything else is a
	// server that does not speak the API.
	return vectorstore.ErrUnavailable
}
