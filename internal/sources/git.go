package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// The keys of a Git source's Secret.
const (
	GitUsername      = "username"
	GitPassword      = "password"
	GitToken         = "token"
	GitSSHPrivateKey = "ssh-privatekey"
	GitKnownHosts    = "known_hosts"
)

// Git limits.
var (
	// MaxCloneBytes bounds the on-disk size of a clone: the fetch stops
	// beyond it and the source fails.
	MaxCloneBytes int64 = 4 << 30
	// gitObjectCache bounds the memory go-git spends on decoded objects.
	gitObjectCache = 8 * cache.MiByte
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Git is a repository at a ref. List fetches the ref's commit alone (depth
// 1) into a temporary directory (TempDir; removed when List returns) and
// reads its tree one blob at a time. The revision is the commit SHA.
type Git struct {
	URL     string
	Ref     string
	Auth    transport.AuthMethod
	TempDir string // "" : the system's
}

func newGit(spec ragv1alpha1.GitSource, secretDir string) (*Git, error) {
	vals, err := readSecret(secretDir)
	if err != nil {
		return nil, err
	}
	g := &Git{URL: spec.URL, Ref: spec.Ref}
	if secretDir == "" {
		return g, nil
	}
	ep, err := transport.NewEndpoint(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("git url: %w", err)
	}
	switch ep.Protocol {
	case "http", "https":
		pass := vals[GitPassword]
		if pass == "" {
			pass = vals[GitToken]
		}
		user := vals[GitUsername]
		if user == "" {
			user = "git" // a token alone: any non-empty user name works with the common hosts
		}
		if pass == "" {
			return nil, fmt.Errorf("the Secret of an https git source needs %s or %s", GitPassword, GitToken)
		}
		g.Auth = &githttp.BasicAuth{Username: user, Password: pass}
	case "ssh":
		key := vals[GitSSHPrivateKey]
		if key == "" {
			return nil, fmt.Errorf("the Secret of an ssh git source needs %s", GitSSHPrivateKey)
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		pk, err := gitssh.NewPublicKeys(user, []byte(key), "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", GitSSHPrivateKey, err)
		}
		// The host is trusted through the Secret's known_hosts. Without it,
		// through the known_hosts files of the indexer's own file system
		// (SSH_KNOWN_HOSTS, ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts),
		// which the ragserver image does not ship. An unknown host key is
		// refused, never ignored.
		var files []string
		if _, ok := vals[GitKnownHosts]; ok {
			files = []string{filepath.Join(secretDir, GitKnownHosts)}
		}
		db, err := gitssh.NewKnownHostsDb(files...)
		switch {
		case err != nil && files == nil:
			return nil, fmt.Errorf("the Secret of an ssh git source needs %s (the server's host keys, as ssh-keyscan prints them): the indexer has no known_hosts file of its own (%w)", GitKnownHosts, err)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", GitKnownHosts, err)
		}
		pk.HostKeyCallback = db.HostKeyCallback()
		// Ask for the key types the entries have: by default the client
		// prefers ECDSA, and a server that has an ECDSA key would present
		// it to a known_hosts holding only its Ed25519 key (ssh-keyscan
		// -t ed25519): a "key mismatch".
		port := ep.Port
		if port == 0 {
			port = 22
		}
		pk.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port)))
		g.Auth = pk
	}
	return g, nil
}

// List fetches the commit and visits the regular files of its tree, in
// tree order. Symbolic links and submodules are not files of the source.
func (g *Git) List(ctx context.Context, visit func(Entry) error) (string, error) {
	dir, err := os.MkdirTemp(g.TempDir, "ragops-git-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	commit, err := g.fetch(ctx, dir)
	if err != nil {
		return "", err
	}
	// The watch during the fetch stops a large one early; this catches one
	// that finished between two looks.
	if dirSize(dir) > MaxCloneBytes {
		return "", fmt.Errorf("git fetch: the repository exceeds %d bytes on disk", MaxCloneBytes)
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", fmt.Errorf("read the tree of %s: %w", commit.Hash, err)
	}
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		return visit(Entry{Path: f.Name, Size: f.Size, Open: func(context.Context) (io.ReadCloser, error) {
			return f.Reader()
		}})
	})
	if err != nil {
		return "", err
	}
	return commit.Hash.String(), nil
}

// fetch resolves the ref on the remote and fetches its commit.
func (g *Git) fetch(ctx context.Context, dir string) (*object.Commit, error) {
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(gitObjectCache))
	repo, err := git.Init(st, nil)
	if err != nil {
		return nil, err
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{g.URL}})
	if err != nil {
		return nil, err
	}

	// The clone's size is watched while it is fetched: a repository larger
	// than MaxCloneBytes stops the fetch instead of filling the disk.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tooBig atomic.Bool
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if dirSize(dir) > MaxCloneBytes {
					tooBig.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	defer func() { cancel(); <-watchDone }()
	wrap := func(err error) error {
		if tooBig.Load() {
			return fmt.Errorf("git fetch: the repository exceeds %d bytes on disk", MaxCloneBytes)
		}
		return fmt.Errorf("git fetch %s: %w", g.Ref, err)
	}

	var want plumbing.Hash
	var spec config.RefSpec
	if shaRE.MatchString(g.Ref) {
		want = plumbing.NewHash(g.Ref)
		spec = config.RefSpec(g.Ref + ":refs/heads/ragops-sync")
	} else {
		refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: g.Auth})
		if err != nil {
			return nil, fmt.Errorf("git ls-remote: %w", err)
		}
		name, err := resolveRef(refs, g.Ref)
		if err != nil {
			return nil, err
		}
		spec = config.RefSpec("+" + name.String() + ":" + name.String())
		err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Depth: 1, Auth: g.Auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, wrap(err)
		}
		ref, err := repo.Reference(name, true)
		if err != nil {
			return nil, wrap(err)
		}
		return peel(repo, ref.Hash())
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Depth: 1, Auth: g.Auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if ctx.Err() != nil {
			return nil, wrap(err)
		}
		// Servers that refuse a commit they do not advertise: fetch the
		// branches and tags (whole history) and look for it there.
		all := []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
		err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: all, Auth: g.Auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, wrap(err)
		}
	}
	c, err := peel(repo, want)
	if err != nil {
		return nil, fmt.Errorf("git: commit %s is not in the repository: %w", want, err)
	}
	return c, nil
}

// resolveRef finds ref among the remote's references: "" is HEAD; otherwise
// a full reference name, a branch, then a tag.
func resolveRef(refs []*plumbing.Reference, ref string) (plumbing.ReferenceName, error) {
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if ref == "" || ref == "HEAD" {
		head, ok := byName[plumbing.HEAD]
		if !ok {
			return "", errors.New("git: the remote has no HEAD: set ref")
		}
		if head.Type() == plumbing.SymbolicReference {
			return head.Target(), nil
		}
		// HEAD without its target: the branch at the same commit.
		for _, r := range refs {
			if r.Name().IsBranch() && r.Hash() == head.Hash() {
				return r.Name(), nil
			}
		}
		return "", errors.New("git: cannot tell the remote's default branch: set ref")
	}
	for _, n := range []plumbing.ReferenceName{plumbing.ReferenceName(ref), plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)} {
		if strings.HasPrefix(n.String(), "refs/") {
			if _, ok := byName[n]; ok {
				return n, nil
			}
		}
	}
	return "", fmt.Errorf("git: ref %q is neither a branch nor a tag of the remote", ref)
}

// peel returns the commit that h (a commit or an annotated tag) names.
func peel(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	for range 8 {
		obj, err := repo.Object(plumbing.AnyObject, h)
		if err != nil {
			return nil, err
		}
		switch o := obj.(type) {
		case *object.Commit:
			return o, nil
		case *object.Tag:
			h = o.Target
		default:
			return nil, fmt.Errorf("git: %s is a %s, not a commit", h, obj.Type())
		}
	}
	return nil, fmt.Errorf("git: %s: too many nested tags", h)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			if fi, err := de.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
