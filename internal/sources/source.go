package sources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// Entry is one file of a source, not read yet.
type Entry struct {
	// Path is the file's path in the source, slash-separated, relative.
	Path string
	// Size is its size in bytes, or -1 when the source does not say.
	Size int64
	// Open opens it for reading; Walk calls it at most once, and only for a
	// file it keeps.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Lister is one kind of source.
type Lister interface {
	// List calls visit for each file of the source, one at a time, and
	// returns the content revision of what it listed. An error from visit
	// stops the listing and is returned as is; any other error means the
	// listing is incomplete.
	List(ctx context.Context, visit func(Entry) error) (revision string, err error)
}

// The sub-directories of a source's mount (see contract.SourcesMountDir).
const (
	SecretDir    = "secret"
	VolumeDir    = "volume"
	ConfigMapDir = "configmap"
)

// New returns the Lister of src, whose Secret, volume or ConfigMap is
// mounted under dir (contract.SourcesMountDir/<name>). The Secret's files:
//   - git: username and password, or token, for HTTPS; ssh-privatekey and
//     known_hosts for SSH.
//   - http: one file per header, named after it (e.g. Authorization).
//   - s3: accessKeyID and secretAccessKey; without a Secret, anonymous.
func New(src ragv1alpha1.DocumentSource, dir string) (Lister, error) {
	secret := filepath.Join(dir, SecretDir)
	switch {
	case src.Git != nil:
		return newGit(*src.Git, secretDirIf(src.Git.SecretRef != nil, secret))
	case src.HTTP != nil:
		return newHTTP(*src.HTTP, secretDirIf(src.HTTP.HeadersSecretRef != nil, secret))
	case src.S3 != nil:
		return newS3(*src.S3, secretDirIf(src.S3.SecretRef != nil, secret))
	case src.PVC != nil:
		return Dir{Root: filepath.Join(dir, VolumeDir)}, nil
	case src.ConfigMap != nil:
		return Dir{Root: filepath.Join(dir, ConfigMapDir), ConfigMap: true}, nil
	}
	return nil, fmt.Errorf("source %q sets none of git, http, s3, pvc and configMap", src.Name)
}

func secretDirIf(set bool, dir string) string {
	if set {
		return dir
	}
	return ""
}

// readSecret reads the files of a mounted Secret, skipping the entries of
// the mount's own machinery (names starting with a dot, such as "..data").
// An empty dir means no Secret: no values.
func readSecret(dir string) (map[string]string, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the mounted Secret: %w", err)
	}
	vals := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read the mounted Secret: %w", err)
		}
		vals[e.Name()] = strings.TrimSpace(string(b))
	}
	return vals, nil
}

// Filter keeps the files whose path matches every include group (each group
// is a list of patterns, one of which must match; an empty group matches
// everything) and no exclude pattern. A pattern is a doublestar glob ("**"
// matches any number of directories); it also matches every file under a
// directory it names ("docs" keeps "docs/a/b.md").
type Filter struct {
	Include [][]string
	Exclude []string
}

// NewFilter is the filter of a source: the global patterns of
// spec.documents, the source's own and, for Git, its paths.
func NewFilter(docs ragv1alpha1.DocumentsSource, src ragv1alpha1.DocumentSource) Filter {
	f := Filter{Include: [][]string{docs.Include, src.Include}}
	if src.Git != nil {
		f.Include = append(f.Include, src.Git.Paths)
	}
	f.Exclude = append(append(f.Exclude, docs.Exclude...), src.Exclude...)
	return f
}

// Validate reports the first malformed pattern.
func (f Filter) Validate() error {
	for _, g := range append(f.Include, f.Exclude) {
		for _, p := range g {
			if !doublestar.ValidatePattern(p) {
				return fmt.Errorf("invalid glob pattern %q", p)
			}
		}
	}
	return nil
}

// Match reports whether the filter keeps p.
func (f Filter) Match(p string) bool {
	for _, g := range f.Include {
		if len(g) > 0 && !matchAny(g, p) {
			return false
		}
	}
	return !matchAny(f.Exclude, p)
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		pat = strings.TrimPrefix(pat, "./")
		if ok, _ := doublestar.Match(pat, p); ok {
			return true
		}
		if ok, _ := doublestar.Match(strings.TrimSuffix(pat, "/")+"/**", p); ok {
			return true
		}
	}
	return false
}

// Visitor receives what Walk finds.
type Visitor struct {
	// File is called with each kept file's bytes (at most MaxFileBytes).
	// Its error stops the walk and is returned by Walk.
	File func(path string, data []byte) error
	// Skip is called for each file the filter kept but that could not be
	// read (too large, an error): the index keeps its last version.
	Skip func(path, reason string)
}

// ErrUnreadable is returned (wrapped) by Walk when a source listed files but
// none of them could be read: the source is unreachable in effect.
var ErrUnreadable = errors.New("no file of the source could be read")

// Walk lists l and calls v for the files f keeps, one at a time, reading
// each (up to maxBytes; a larger file is skipped) before the next. It
// returns the source's revision.
func Walk(ctx context.Context, l Lister, f Filter, maxBytes int64, v Visitor) (string, error) {
	if err := f.Validate(); err != nil {
		return "", err
	}
	var opened, failed int
	var firstErr error
	tooLarge := fmt.Sprintf("larger than %d bytes", maxBytes)
	rev, err := l.List(ctx, func(e Entry) error {
		if !f.Match(e.Path) {
			return nil
		}
		if e.Size > maxBytes {
			v.Skip(e.Path, tooLarge)
			return nil
		}
		opened++
		data, err := readFile(ctx, e, maxBytes)
		switch {
		case errors.Is(err, errTooLarge):
			v.Skip(e.Path, tooLarge)
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			if firstErr == nil {
				firstErr = err
			}
			v.Skip(e.Path, err.Error())
			return nil
		}
		return v.File(e.Path, data)
	})
	if err != nil {
		return "", err
	}
	if opened > 0 && failed == opened {
		return "", fmt.Errorf("%w: %d files failed, the first with: %w", ErrUnreadable, failed, firstErr)
	}
	return rev, nil
}

var errTooLarge = errors.New("too large")

func readFile(ctx context.Context, e Entry, maxBytes int64) ([]byte, error) {
	rc, err := e.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, errTooLarge
	}
	return data, nil
}

// revision hashes the parts of a listing into a short, stable revision.
type revision struct{ h hash.Hash }

func newRevision() *revision { return &revision{sha256.New()} }

func (r *revision) add(parts ...string) {
	for _, p := range parts {
		fmt.Fprintf(r.h, "%d:%s", len(p), p)
	}
	r.h.Write([]byte{0})
}

func (r *revision) String() string { return "sha256:" + hex.EncodeToString(r.h.Sum(nil)[:16]) }

// cleanPath makes a source's name for a file relative and slash-separated,
// without "." or ".." segments.
func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(p, "\\", "/")), "/")
}
