package sources

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Dir is a mounted directory: a PersistentVolumeClaim's (the whole tree) or
// a ConfigMap's (its keys, as files at the top level).
//
// Names starting with a dot are skipped, files and directories alike: this
// leaves out the "..data" and "..<timestamp>" entries of a ConfigMap or
// Secret mount, and hidden files such as .git. Symbolic links to files are
// followed when they stay inside the root (a ConfigMap's files are links
// into "..data"); links to directories are not followed.
type Dir struct {
	Root string
	// ConfigMap: the revision is the target of the mount's "..data" link
	// (the kubelet swaps it atomically on every update).
	ConfigMap bool
}

// List walks the directory in lexical order.
func (d Dir) List(ctx context.Context, visit func(Entry) error) (string, error) {
	root, err := filepath.EvalSymlinks(d.Root)
	if err != nil {
		return "", fmt.Errorf("read the mounted directory: %w", err)
	}
	rev := newRevision()
	var dataLink string
	if d.ConfigMap {
		dataLink, _ = os.Readlink(filepath.Join(root, "..data"))
	}
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p == root {
			return nil
		}
		if strings.HasPrefix(de.Name(), ".") {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if de.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		target := p
		if de.Type()&fs.ModeSymlink != 0 {
			t, err := filepath.EvalSymlinks(p)
			if err != nil || !within(root, t) {
				return nil // dangling or leaving the mount: not a file of it
			}
			target = t
		}
		fi, err := os.Stat(target)
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		rev.add(name, strconv.FormatInt(fi.Size(), 10), strconv.FormatInt(fi.ModTime().UnixNano(), 10))
		return visit(Entry{Path: name, Size: fi.Size(), Open: func(context.Context) (io.ReadCloser, error) {
			return os.Open(target)
		}})
	})
	if err != nil {
		return "", err
	}
	if dataLink != "" {
		return dataLink, nil
	}
	return rev.String(), nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
