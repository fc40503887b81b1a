package manifests_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// earlyExitPipe matches a pipe into a reader that may exit before it has
// read all its input: grep -q (or --quiet) and head. Under `set -o pipefail`
// the writer then dies of SIGPIPE and the pipeline fails although the match
// was found (make cluster-up once failed with "unknown build target 'pvprov'"
// from `echo "$TARGETS" | grep -q ...`). Use a here-string instead:
// grep -q PATTERN <<<"$X".
var earlyExitPipe = regexp.MustCompile(`\|\s*(grep\s+(-[a-zA-Z]*q[a-zA-Z]*\b|--quiet\b|-[a-zA-Z]*m\s*\d)|head\b)`)

func TestEarlyExitPipePattern(t *testing.T) {
	for _, bad := range []string{
		`echo "$TARGETS" | grep -q "^$w|" || die`,
		`printf '%s' "$x" | grep -qF -- "$pat"`,
		`cat f | grep --quiet x`,
		`awk '{print}' | head -n1`,
		`ss -Hltn | grep -qx True`,
	} {
		if !earlyExitPipe.MatchString(bad) {
			t.Errorf("pattern misses %q", bad)
		}
	}
	for _, good := range []string{
		`grep -q "^$w|" <<<"$TARGETS" || die`,
		`rules=$(iptables -L | grep -F "name" || true)`,
	} {
		if earlyExitPipe.MatchString(good) {
			t.Errorf("pattern flags %q", good)
		}
	}
}

// TestHackScriptsHaveNoEarlyExitPipes keeps the pattern out of hack/.
func TestHackScriptsHaveNoEarlyExitPipes(t *testing.T) {
	root := filepath.Join(repoRoot, "hack")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (!strings.HasSuffix(path, ".sh") && !strings.HasSuffix(path, ".bash")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if earlyExitPipe.MatchString(line) {
				rel, _ := filepath.Rel(repoRoot, path)
				t.Errorf("%s:%d pipes into a reader that exits early (SIGPIPE under pipefail); use a here-string: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatalf("no shell scripts found under %s", root)
	}
}
