package sources_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/sources"
	"github.com/ragops/ragops/internal/testutil/gitserver"
	"github.com/ragops/ragops/internal/testutil/s3server"
)

// walked is what a Walk found.
type walked struct {
	files   map[string]string
	skipped map[string]string
	rev     string
}

func walk(t *testing.T, l sources.Lister, f sources.Filter, maxBytes int64) (walked, error) {
	t.Helper()
	w := walked{files: map[string]string{}, skipped: map[string]string{}}
	var err error
	w.rev, err = sources.Walk(context.Background(), l, f, maxBytes, sources.Visitor{
		File: func(p string, data []byte) error { w.files[p] = string(data); return nil },
		Skip: func(p, why string) { w.skipped[p] = why },
	})
	return w, err
}

func mustWalk(t *testing.T, l sources.Lister, f sources.Filter) walked {
	t.Helper()
	w, err := walk(t, l, f, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func TestFilter(t *testing.T) {
	f := sources.NewFilter(
		ragv1alpha1.DocumentsSource{Include: []string{"**/*.md", "notes"}, Exclude: []string{"**/draft-*"}},
		ragv1alpha1.DocumentSource{Exclude: []string{"private/**"}, Git: &ragv1alpha1.GitSource{Paths: []string{"docs", "notes/"}}},
	)
	for p, want := range map[string]bool{
		"docs/a.md":           true,
		"docs/deep/er/b.md":   true,
		"docs/a.txt":          false, // global include: not *.md, not under notes
		"notes/x.txt":         true,  // a directory named by a pattern keeps what is under it
		"readme.md":           false, // git paths: not under docs or notes
		"docs/draft-1.md":     false, // exclude wins
		"notes/sub/draft-2.m": false,
		"private/docs/a.md":   false,
	} {
		if got := f.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
	if err := (sources.Filter{Include: [][]string{{"a/[b"}}}).Validate(); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	if !(sources.Filter{}).Match("any/file.md") {
		t.Error("the empty filter must keep every file")
	}
}

func TestDirPVC(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volume")
	outside := t.TempDir()
	write(t, root, map[string]string{
		"a.md": "alpha", "sub/b.txt": "beta", "sub/deeper/c.md": "gamma", "big.md": strings.Repeat("x", 100),
		".hidden.md": "no", ".git/config": "no",
	})
	write(t, outside, map[string]string{"secret.md": "must not leak"})
	must(t, os.Symlink(filepath.Join(outside, "secret.md"), filepath.Join(root, "escape.md")))
	must(t, os.Symlink("sub/b.txt", filepath.Join(root, "link.txt")))

	l, err := sources.New(ragv1alpha1.DocumentSource{Name: "p", PVC: &ragv1alpha1.PVCSource{ClaimName: "c"}}, filepath.Dir(root))
	must(t, err)
	w, err := walk(t, l, sources.Filter{}, 50)
	must(t, err)
	if got, want := keys(w.files), []string{"a.md", "link.txt", "sub/b.txt", "sub/deeper/c.md"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if w.files["sub/deeper/c.md"] != "gamma" || w.files["link.txt"] != "beta" {
		t.Fatalf("contents %v", w.files)
	}
	if !strings.Contains(w.skipped["big.md"], "larger than 50 bytes") || len(w.skipped) != 1 {
		t.Fatalf("skipped %v, want big.md as too large", w.skipped)
	}
	rev1 := w.rev
	if again := mustWalkMax(t, l, 50); again.rev != rev1 {
		t.Fatalf("revision changed without a change: %s, %s", rev1, again.rev)
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	write(t, root, map[string]string{"a.md": "alpha 2"})
	if again := mustWalkMax(t, l, 50); again.rev == rev1 {
		t.Fatal("revision unchanged after a file changed")
	}

	// A missing mount is an error of the source, not an empty source.
	missing, _ := sources.New(ragv1alpha1.DocumentSource{Name: "p", PVC: &ragv1alpha1.PVCSource{ClaimName: "c"}}, t.TempDir())
	if _, err := walk(t, missing, sources.Filter{}, 50); err == nil {
		t.Fatal("a missing volume listed without error")
	}
}

func mustWalkMax(t *testing.T, l sources.Lister, maxBytes int64) walked {
	t.Helper()
	w, err := walk(t, l, sources.Filter{}, maxBytes)
	must(t, err)
	return w
}

// TestDirConfigMap lays out a directory the way the kubelet mounts a
// ConfigMap: files are links into "..data", itself a link to a timestamped
// directory that is swapped on update.
func TestDirConfigMap(t *testing.T) {
	base := t.TempDir()
	mount := filepath.Join(base, "configmap")
	must(t, os.MkdirAll(mount, 0o755))
	update := func(stamp string, files map[string]string) {
		dir := filepath.Join(mount, stamp)
		write(t, dir, files)
		tmp := filepath.Join(mount, "..data_tmp")
		must(t, os.Symlink(stamp, tmp))
		must(t, os.Rename(tmp, filepath.Join(mount, "..data")))
		for name := range files {
			link := filepath.Join(mount, name)
			if _, err := os.Lstat(link); err != nil {
				must(t, os.Symlink(filepath.Join("..data", name), link))
			}
		}
	}
	update("..2026_01_01_00_00_00.1", map[string]string{"faq.md": "one", "rates.txt": "two"})
	l, err := sources.New(ragv1alpha1.DocumentSource{Name: "cm", ConfigMap: &ragv1alpha1.ConfigMapReference{Name: "x"}}, base)
	must(t, err)
	w := mustWalk(t, l, sources.Filter{})
	if got := keys(w.files); !slices.Equal(got, []string{"faq.md", "rates.txt"}) || w.files["faq.md"] != "one" {
		t.Fatalf("files %v", w.files)
	}
	if w.rev != "..2026_01_01_00_00_00.1" {
		t.Fatalf("revision %q, want the ..data target", w.rev)
	}
	update("..2026_01_02_00_00_00.2", map[string]string{"faq.md": "one, updated", "rates.txt": "two"})
	w = mustWalk(t, l, sources.Filter{})
	if w.files["faq.md"] != "one, updated" || w.rev != "..2026_01_02_00_00_00.2" {
		t.Fatalf("after the update: %v rev %s", w.files, w.rev)
	}
}

func TestHTTP(t *testing.T) {
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/docs/etag.md", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, "with an etag")
	})
	mux.HandleFunc("/docs/modified.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2026 15:04:05 GMT")
		fmt.Fprint(w, "with last-modified")
	})
	body := "plain " + strings.Repeat("y", 10)
	mux.HandleFunc("/plain.md", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
	mux.HandleFunc("/private.md", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("X-Tenant") != "finance" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "private")
	})
	mux.HandleFunc("/gone.md", http.NotFound)
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/moved.md", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/plain.md", http.StatusMovedPermanently)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	write(t, filepath.Join(dir, "secret"), map[string]string{"Authorization": "Bearer s3cret\n", "X-Tenant": "finance"})
	src := ragv1alpha1.DocumentSource{Name: "h", HTTP: &ragv1alpha1.HTTPSource{
		URLs: []string{srv.URL + "/docs/etag.md", srv.URL + "/docs/modified.txt", srv.URL + "/plain.md",
			srv.URL + "/private.md", srv.URL + "/gone.md", srv.URL + "/loop", srv.URL + "/moved.md", srv.URL + "/excluded.md"},
		HeadersSecretRef: &ragv1alpha1.LocalSecretReference{Name: "hdr"},
	}}
	l, err := sources.New(src, dir)
	must(t, err)
	f := sources.Filter{Exclude: []string{"*/excluded.md"}}
	w := mustWalk(t, l, f)
	want := map[string]string{
		host + "/docs/etag.md": "with an etag", host + "/docs/modified.txt": "with last-modified",
		host + "/plain.md": body, host + "/private.md": "private", host + "/moved.md": body,
	}
	if !maps.Equal(w.files, want) {
		t.Fatalf("files %v, want %v", w.files, want)
	}
	if !strings.Contains(w.skipped[host+"/gone.md"], "404") || !strings.Contains(w.skipped[host+"/loop"], "redirects") || len(w.skipped) != 2 {
		t.Fatalf("skipped %v: want gone.md (404) and loop (redirects)", w.skipped)
	}
	if w.rev != mustWalk(t, l, f).rev {
		t.Fatal("revision changed without a change")
	}
	body = "plain changed"
	if w.rev == mustWalk(t, l, f).rev {
		t.Fatal("revision unchanged after the content of a file without validators changed")
	}
	// The excluded URL was never fetched: per walk, 7 of the 8 URLs, then
	// MaxRedirects redirects of the loop and 1 of moved.md.
	if n, want := requests.Load(), int64(3*(7+sources.MaxRedirects+1)); n != want {
		t.Fatalf("%d requests for 3 walks, want %d: an excluded URL was fetched?", n, want)
	}

	// Every file failing is the source failing.
	srv.Close()
	if _, err := walk(t, l, f, 1<<20); !errors.Is(err, sources.ErrUnreadable) {
		t.Fatalf("a server that is down: %v, want ErrUnreadable", err)
	}
}

func TestGit(t *testing.T) {
	repo := gitserver.New(t)
	c1 := repo.Commit("first", map[string]string{"docs/a.md": "alpha", "docs/b.md": "beta", "README.md": "readme", "img.png": "\x89PNG"})
	repo.Run("tag", "-a", "v1", "-m", "release 1")
	c2 := repo.Commit("second", map[string]string{"docs/a.md": "alpha 2", "docs/b.md": "", "docs/c.md": "gamma"})
	must(t, os.Symlink("docs/c.md", filepath.Join(repo.Dir, "link.md")))
	c3 := repo.Commit("third", nil)

	dir := t.TempDir()
	open := func(ref string) sources.Lister {
		l, err := sources.New(ragv1alpha1.DocumentSource{Name: "g", Git: &ragv1alpha1.GitSource{URL: repo.URL, Ref: ref}}, dir)
		must(t, err)
		return l
	}
	for _, tc := range []struct {
		ref, rev string
		files    map[string]string
	}{
		{"", c3, map[string]string{"docs/a.md": "alpha 2", "docs/c.md": "gamma", "README.md": "readme", "img.png": "\x89PNG"}},
		{"main", c3, map[string]string{"docs/a.md": "alpha 2", "docs/c.md": "gamma", "README.md": "readme", "img.png": "\x89PNG"}},
		{"v1", c1, map[string]string{"docs/a.md": "alpha", "docs/b.md": "beta", "README.md": "readme", "img.png": "\x89PNG"}},
		{c2, c2, map[string]string{"docs/a.md": "alpha 2", "docs/c.md": "gamma", "README.md": "readme", "img.png": "\x89PNG"}},
		{c1, c1, map[string]string{"docs/a.md": "alpha", "docs/b.md": "beta", "README.md": "readme", "img.png": "\x89PNG"}},
	} {
		w := mustWalk(t, open(tc.ref), sources.Filter{})
		if w.rev != tc.rev || !maps.Equal(w.files, tc.files) {
			t.Errorf("ref %q: revision %s files %v, want %s %v", tc.ref, w.rev, w.files, tc.rev, tc.files)
		}
	}
	w := mustWalk(t, open("main"), sources.NewFilter(ragv1alpha1.DocumentsSource{}, ragv1alpha1.DocumentSource{Git: &ragv1alpha1.GitSource{Paths: []string{"docs"}}}))
	if got := keys(w.files); !slices.Equal(got, []string{"docs/a.md", "docs/c.md"}) {
		t.Errorf("paths [docs]: %v", got)
	}
	if _, err := walk(t, open("no-such-branch"), sources.Filter{}, 1<<20); err == nil || !strings.Contains(err.Error(), "neither a branch nor a tag") {
		t.Errorf("unknown ref: %v", err)
	}

	// A server that refuses commits it does not advertise (git's default):
	// an older commit is found in the fetched history instead.
	repo.Run("config", "--unset", "uploadpack.allowAnySHA1InWant")
	if w := mustWalk(t, open(c1), sources.Filter{}); w.rev != c1 || w.files["docs/b.md"] != "beta" {
		t.Errorf("commit %s from a server that does not serve unadvertised commits: %s %v", c1, w.rev, w.files)
	}

	// Credentials from the mounted Secret.
	repo.User, repo.Password = "reader", "t0ken"
	if _, err := walk(t, open("main"), sources.Filter{}, 1<<20); err == nil {
		t.Fatal("a private repository was read without credentials")
	}
	write(t, filepath.Join(dir, "secret"), map[string]string{"username": "reader", "token": "t0ken"})
	l, err := sources.New(ragv1alpha1.DocumentSource{Name: "g", Git: &ragv1alpha1.GitSource{URL: repo.URL, Ref: "main",
		SecretRef: &ragv1alpha1.LocalSecretReference{Name: "creds"}}}, dir)
	must(t, err)
	if w := mustWalk(t, l, sources.Filter{}); w.rev != c3 {
		t.Fatalf("with credentials: revision %s, want %s", w.rev, c3)
	}
}

func TestGitCloneSizeBound(t *testing.T) {
	repo := gitserver.New(t)
	var big bytes.Buffer
	for i := range 200000 {
		fmt.Fprintf(&big, "line %d %x\n", i, i*7919) // ~3 MB, poorly compressible
	}
	repo.Commit("big", map[string]string{"big.txt": big.String()})
	old := sources.MaxCloneBytes
	sources.MaxCloneBytes = 100 << 10
	defer func() { sources.MaxCloneBytes = old }()
	l, err := sources.New(ragv1alpha1.DocumentSource{Name: "g", Git: &ragv1alpha1.GitSource{URL: repo.URL}}, t.TempDir())
	must(t, err)
	if _, err := walk(t, l, sources.Filter{}, 1<<30); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("a clone over the bound: %v", err)
	}
}

func TestS3(t *testing.T) {
	srv := s3server.Start(t)
	ctx := context.Background()
	admin, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(s3server.AccessKey, s3server.SecretKey, "")})
	must(t, err)
	must(t, admin.MakeBucket(ctx, "reports", minio.MakeBucketOptions{}))
	put := func(key, body string) {
		t.Helper()
		if _, err := admin.PutObject(ctx, "reports", key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v\n%s", key, err, srv.Output())
		}
	}
	put("2026/q1.md", "first quarter")
	put("2026/q2/summary.txt", "second quarter")
	put("2026/huge.md", strings.Repeat("z", 2000))
	put("other/x.md", "outside the prefix")

	dir := t.TempDir()
	write(t, filepath.Join(dir, "secret"), map[string]string{"accessKeyID": s3server.AccessKey, "secretAccessKey": s3server.SecretKey})
	src := ragv1alpha1.DocumentSource{Name: "s", S3: &ragv1alpha1.S3Source{Endpoint: srv.Endpoint, Bucket: "reports", Prefix: "2026/",
		SecretRef: &ragv1alpha1.LocalSecretReference{Name: "s3"}}}
	l, err := sources.New(src, dir)
	must(t, err)
	w, err := walk(t, l, sources.Filter{}, 1000)
	must(t, err)
	if want := map[string]string{"q1.md": "first quarter", "q2/summary.txt": "second quarter"}; !maps.Equal(w.files, want) {
		t.Fatalf("files %v, want %v", w.files, want)
	}
	if !strings.Contains(w.skipped["huge.md"], "larger than") {
		t.Fatalf("skipped %v", w.skipped)
	}
	rev := w.rev
	w, err = walk(t, l, sources.Filter{}, 1000)
	must(t, err)
	if w.rev != rev {
		t.Fatal("revision changed without a change")
	}
	put("2026/q1.md", "first quarter, restated")
	w, err = walk(t, l, sources.Filter{}, 1000)
	must(t, err)
	if w.rev == rev || w.files["q1.md"] != "first quarter, restated" {
		t.Fatalf("after a change: revision %s (was %s), q1 %q", w.rev, rev, w.files["q1.md"])
	}

	// Wrong credentials, anonymous access to a private bucket, a bucket
	// that does not exist: errors of the source.
	write(t, filepath.Join(dir, "secret"), map[string]string{"secretAccessKey": "wrong"})
	bad, err := sources.New(src, dir)
	must(t, err)
	if _, err := walk(t, bad, sources.Filter{}, 1000); err == nil {
		t.Error("wrong credentials listed the bucket")
	}
	anon := src
	anon.S3 = &ragv1alpha1.S3Source{Endpoint: srv.Endpoint, Bucket: "reports"}
	if l, err := sources.New(anon, dir); err != nil {
		t.Fatal(err)
	} else if _, err := walk(t, l, sources.Filter{}, 1000); err == nil {
		t.Error("anonymous access listed a private bucket")
	}
}

func TestSecretRequiredKeys(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "secret"), map[string]string{"unrelated": "x"})
	ref := &ragv1alpha1.LocalSecretReference{Name: "s"}
	for name, src := range map[string]ragv1alpha1.DocumentSource{
		"s3":        {S3: &ragv1alpha1.S3Source{Endpoint: "http://127.0.0.1:1", Bucket: "b", SecretRef: ref}},
		"git https": {Git: &ragv1alpha1.GitSource{URL: "https://example.invalid/r.git", SecretRef: ref}},
		"git ssh":   {Git: &ragv1alpha1.GitSource{URL: "git@example.invalid:r.git", SecretRef: ref}},
	} {
		if _, err := sources.New(src, dir); err == nil {
			t.Errorf("%s: a Secret without the needed keys was accepted", name)
		}
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(content), 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGitSSH fetches over SSH from a real git-upload-pack behind an SSH
// server (gitserver.ServeSSH) that authorizes one generated key and offers
// two host keys, ECDSA and Ed25519. The host is trusted through the
// known_hosts of the Secret; without it, through the known_hosts files of
// the indexer's own file system (SSH_KNOWN_HOSTS, ~/.ssh/known_hosts,
// /etc/ssh/ssh_known_hosts), which the ragserver image does not ship. An
// unknown host key is refused, never ignored.
func TestGitSSH(t *testing.T) {
	repo := gitserver.New(t)
	c1 := repo.Commit("first", map[string]string{"docs/a.md": "alpha", "docs/b.md": "beta"})
	privateKey, signer := gitserver.NewKey(t)
	srv := repo.ServeSSH(t, signer.PublicKey())
	ecdsaKey, ed25519Key := srv.HostKeys[0], srv.HostKeys[1]
	_, otherSigner := gitserver.NewKey(t)

	open := func(secret map[string]string) sources.Lister {
		t.Helper()
		dir := t.TempDir()
		write(t, filepath.Join(dir, "secret"), secret)
		l, err := sources.New(ragv1alpha1.DocumentSource{Name: "g", Git: &ragv1alpha1.GitSource{URL: srv.URL, Ref: "main",
			SecretRef: &ragv1alpha1.LocalSecretReference{Name: "deploy-key"}}}, dir)
		must(t, err)
		return l
	}
	// The indexer's own known_hosts files: none, whatever this host has
	// (SSH_KNOWN_HOSTS replaces ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts).
	ownFile := filepath.Join(t.TempDir(), "known_hosts")
	t.Setenv("SSH_KNOWN_HOSTS", ownFile)

	for _, tc := range []struct {
		name       string
		knownHosts string
	}{
		{"both host keys", srv.KnownHosts(ecdsaKey, ed25519Key)},
		// ssh-keyscan -t ed25519: the client must ask for the key type the
		// entry has, not its own first choice (ECDSA).
		{"the Ed25519 key only", srv.KnownHosts(ed25519Key)},
		{"the ECDSA key only", srv.KnownHosts(ecdsaKey)},
	} {
		before := srv.Uploads()
		w := mustWalk(t, open(map[string]string{"ssh-privatekey": string(privateKey), "known_hosts": tc.knownHosts}), sources.Filter{})
		if w.rev != c1 || w.files["docs/a.md"] != "alpha" || len(w.files) != 2 {
			t.Errorf("known_hosts with %s: revision %s files %v, want %s and 2 files", tc.name, w.rev, keys(w.files), c1)
		}
		if srv.Uploads() != before+2 {
			t.Errorf("known_hosts with %s: %d git-upload-pack runs, want 2 (ls-remote and fetch)", tc.name, srv.Uploads()-before)
		}
	}

	// A new commit is fetched on the next sync.
	c2 := repo.Commit("second", map[string]string{"docs/b.md": "", "docs/c.md": "gamma"})
	w := mustWalk(t, open(map[string]string{"ssh-privatekey": string(privateKey), "known_hosts": srv.KnownHosts(ed25519Key)}), sources.Filter{})
	if w.rev != c2 || !slices.Equal(keys(w.files), []string{"docs/a.md", "docs/c.md"}) {
		t.Errorf("after a push: revision %s files %v, want %s [docs/a.md docs/c.md]", w.rev, keys(w.files), c2)
	}

	// Without known_hosts in the Secret and without a file of its own, the
	// indexer says what the Secret lacks.
	_, err := sources.New(ragv1alpha1.DocumentSource{Name: "g", Git: &ragv1alpha1.GitSource{URL: srv.URL,
		SecretRef: &ragv1alpha1.LocalSecretReference{Name: "deploy-key"}}}, func() string {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "secret"), map[string]string{"ssh-privatekey": string(privateKey)})
		return dir
	}())
	if err == nil || !strings.Contains(err.Error(), "needs known_hosts") {
		t.Errorf("no known_hosts anywhere: %v, want an error saying the Secret needs known_hosts", err)
	} else {
		t.Logf("no known_hosts anywhere: %v", err)
	}
	// The indexer's own file, where an image provides one, is used the
	// same way: known hosts pass, others do not.
	must(t, os.WriteFile(ownFile, []byte(srv.KnownHosts(ed25519Key)), 0o644))
	if w := mustWalk(t, open(map[string]string{"ssh-privatekey": string(privateKey)}), sources.Filter{}); w.rev != c2 {
		t.Errorf("the host in the indexer's own known_hosts: revision %s, want %s", w.rev, c2)
	}
	must(t, os.WriteFile(ownFile, []byte(strings.Replace(srv.KnownHosts(ed25519Key), "127.0.0.1", "127.0.0.2", 1)), 0o644))

	uploads := srv.Uploads()
	for _, tc := range []struct {
		name    string
		secret  map[string]string
		wantErr string
	}{
		{"a known_hosts entry with another key for the host",
			map[string]string{"ssh-privatekey": string(privateKey), "known_hosts": srv.KnownHosts(otherSigner.PublicKey())},
			"key mismatch"},
		{"no known_hosts in the Secret, a key for another host on the indexer's file system",
			map[string]string{"ssh-privatekey": string(privateKey)},
			"key is unknown"},
		{"a key the server does not authorize",
			map[string]string{"ssh-privatekey": func() string { k, _ := gitserver.NewKey(t); return string(k) }(), "known_hosts": srv.KnownHosts(ed25519Key)},
			"unable to authenticate"},
	} {
		_, err := walk(t, open(tc.secret), sources.Filter{}, 1<<20)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	if srv.Uploads() != uploads {
		t.Errorf("%d git-upload-pack runs for refused connections", srv.Uploads()-uploads)
	}
}
