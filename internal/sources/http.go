package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// HTTP limits.
const (
	// MaxRedirects bounds the redirects followed per URL.
	MaxRedirects = 5
	// HTTPFileTimeout bounds the download of one file.
	HTTPFileTimeout = 5 * time.Minute
	// HTTPHeaderTimeout bounds the wait for a server's answer headers.
	HTTPHeaderTimeout = 30 * time.Second
)

// HTTP is a list of URLs, each one file named by its host and path (and
// query, if any). The revision is a digest of each file's ETag, or
// Last-Modified, or, when the server sends neither, its content.
type HTTP struct {
	URLs    []string
	Headers http.Header
	Client  *http.Client
}

func newHTTP(spec ragv1alpha1.HTTPSource, secretDir string) (*HTTP, error) {
	vals, err := readSecret(secretDir)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range vals {
		h.Set(k, v)
	}
	return &HTTP{URLs: spec.URLs, Headers: h, Client: NewHTTPClient()}, nil
}

// NewHTTPClient is a client with the timeouts and redirect bound above.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = HTTPHeaderTimeout
	return &http.Client{
		Transport: tr,
		Timeout:   HTTPFileTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("stopped after %d redirects", MaxRedirects)
			}
			// Credentials go only where the user sent them.
			if req.URL.Host != via[0].URL.Host {
				for k := range req.Header {
					if !strings.EqualFold(k, "User-Agent") && !strings.EqualFold(k, "Accept") {
						req.Header.Del(k)
					}
				}
			}
			return nil
		},
	}
}

// HTTPPath is the path in the index of the file at raw: host, path and query.
func HTTPPath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	p := u.Host + "/" + cleanPath(u.Path)
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return strings.TrimSuffix(p, "/"), nil
}

// List visits every URL; a file is fetched only when Walk opens it.
func (h *HTTP) List(ctx context.Context, visit func(Entry) error) (string, error) {
	rev := newRevision()
	for _, raw := range h.URLs {
		name, err := HTTPPath(raw)
		if err != nil {
			return "", err
		}
		err = visit(Entry{Path: name, Size: -1, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return h.open(ctx, raw, func(tag string) { rev.add(name, tag) })
		}})
		if err != nil {
			return "", err
		}
	}
	return rev.String(), nil
}

func (h *HTTP) open(ctx context.Context, raw string, tag func(string)) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h.Headers {
		req.Header[k] = v
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials in its query
		}
		return nil, fmt.Errorf("GET: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	switch {
	case resp.Header.Get("ETag") != "":
		tag("etag:" + resp.Header.Get("ETag"))
	case resp.Header.Get("Last-Modified") != "":
		tag("modified:" + resp.Header.Get("Last-Modified"))
	default:
		return &hashingBody{ReadCloser: resp.Body, h: sha256.New(), done: tag}, nil
	}
	return resp.Body, nil
}

// hashingBody digests what is read, for a revision by content.
type hashingBody struct {
	io.ReadCloser
	h    hash.Hash
	done func(string)
	eof  bool
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *hashingBody) Close() error {
	tag := "partial" // a file not read to the end (too large): its digest says so
	if b.eof {
		tag = "sha256:" + hex.EncodeToString(b.h.Sum(nil))
	}
	b.done(tag)
	return b.ReadCloser.Close()
}
