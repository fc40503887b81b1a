package chunk

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name          string
		text          string
		size, overlap int
		want          []string
	}{
		{name: "empty", text: "", size: 10, want: nil},
		{name: "blank", text: " \n\n\t ", size: 10, want: nil},
		{name: "fits", text: "One sentence.", size: 100, want: []string{"One sentence."}},
		{
			name: "sentences packed", text: "Revenue grew. Margins fell. Cash rose.", size: 27,
			want: []string{"Revenue grew. Margins fell.", "Cash rose."},
		},
		{
			name: "paragraphs keep a blank line", text: "First para.\n\nSecond para.", size: 100,
			want: []string{"First para.\n\nSecond para."},
		},
		{
			name: "whitespace collapsed", text: "a  b\n c\t d", size: 100,
			want: []string{"a b c d"},
		},
		{
			name: "long sentence split at words", text: "alpha beta gamma delta epsilon", size: 11,
			want: []string{"alpha beta", "gamma delta", "epsilon"},
		},
		{
			name: "long word kept whole", text: "a supercalifragilistic b", size: 5,
			want: []string{"a", "supercalifragilistic", "b"},
		},
		{
			name: "overlap of whole words", text: "One two three. Four five six. Seven eight nine.", size: 30, overlap: 10,
			want: []string{"One two three. Four five six.", "five six. Seven eight nine."},
		},
		{
			name: "overlap shrinks to fit", text: "aaaa bbbb. cccccccc.", size: 10, overlap: 9,
			want: []string{"aaaa bbbb.", "cccccccc."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.text, tt.size, tt.overlap)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Split(%q, %d, %d) = %q, want %q", tt.text, tt.size, tt.overlap, got, tt.want)
			}
		})
	}
}

func TestSplitIsDeterministic(t *testing.T) {
	text := strings.Repeat("The company reported revenue of $4.2 billion. Operating margin was 18%.\n\n", 50)
	a := Split(text, 200, 40)
	b := Split(text, 200, 40)
	if !slices.Equal(a, b) {
		t.Fatal("Split is not deterministic")
	}
	if len(a) < 10 {
		t.Fatalf("got %d chunks, want many", len(a))
	}
}

// checkInvariants verifies the properties every split must have.
func checkInvariants(t *testing.T, text string, size, overlap int, chunks []string) {
	t.Helper()
	words := strings.Fields(text)
	if size < 1 {
		size = 1
	}
	var covered []string
	for i, c := range chunks {
		if strings.TrimSpace(c) == "" || strings.TrimSpace(c) != c {
			t.Fatalf("chunk %d is empty or untrimmed: %q", i, c)
		}
		cw := strings.Fields(c)
		if utf8.RuneCountInString(c) > size && len(cw) != 1 {
			t.Fatalf("chunk %d has %d runes > size %d and %d words: %q", i, utf8.RuneCountInString(c), size, len(cw), c)
		}
		if utf8.ValidString(text) && !utf8.ValidString(c) {
			t.Fatalf("chunk %d is not valid UTF-8", i)
		}
		// Every chunk is a contiguous run of the input's words.
		if !containsRun(words, cw) {
			t.Fatalf("chunk %d is not a run of input words: %q", i, c)
		}
		if overlap <= 0 {
			covered = append(covered, cw...)
		}
	}
	if overlap <= 0 && !slices.Equal(covered, words) {
		t.Fatalf("chunks without overlap lose or reorder words:\n got %q\nwant %q", covered, words)
	}
}

func containsRun(words, run []string) bool {
	if len(run) == 0 {
		return false
	}
	for i := 0; i+len(run) <= len(words); i++ {
		if slices.Equal(words[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

func TestSplitInvariants(t *testing.T) {
	texts := []string{
		"Net income rose 12% to $1.1bn. Guidance was raised! Will it hold? Analysts disagree.",
		"Risk factors:\n\n- Interest rates.\n- Credit losses.\n\nLiquidity remains strong.",
		"日本語の文章です。もう一つの文です。",
		strings.Repeat("word ", 300),
	}
	for _, text := range texts {
		for _, size := range []int{1, 5, 20, 64, 1000} {
			for _, overlap := range []int{0, 3, 10} {
				checkInvariants(t, text, size, overlap, Split(text, size, overlap))
			}
		}
	}
}

func FuzzChunk(f *testing.F) {
	f.Add("Revenue grew. Margins fell.\n\nCash rose!", 20, 5)
	f.Add("a supercalifragilistic b", 5, 0)
	f.Add("", 1, 0)
	f.Add("x\u00a0y\r\n\r\nz. \"quoted.\" (paren.)", 3, 2)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		if len(text) > 4096 || size > 1<<16 || size < -1<<16 || overlap > 1<<16 || overlap < -1<<16 {
			return
		}
		chunks := Split(text, size, overlap)
		checkInvariants(t, text, size, overlap, chunks)
	})
}
