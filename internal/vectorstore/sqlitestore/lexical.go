package sqlitestore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"unicode"

	"github.com/ragops/ragops/internal/vectorstore"
)

var _ vectorstore.Lexical = (*Store)(nil)

// maxLexicalTerms bounds the distinct words of a lexical query.
const maxLexicalTerms = 64

// LexicalQuery implements vectorstore.Lexical with the FTS5 index of the
// chunks (records_fts): SQLite's bm25() over the words of query, any of which
// may match. The index is written in the same transactions as the chunks,
// and only chunks of committed versions are returned (the commit records are
// joined in the same read), so a lexical query sees exactly what a vector
// query sees. The statistics of bm25() (number of chunks, average length,
// chunks per word) are those of the whole file, every collection included.
//
// Words in more than half of the chunks are left out of the match when the
// query has rarer ones: their inverse document frequency is below ln 2, a
// tenth or less of a distinctive word's, so they barely move the ranking,
// yet they match most chunks and make FTS5 score every one of them
// (BenchmarkLexicalQuery).
func (s *Store) LexicalQuery(ctx context.Context, query string, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	terms := ftsTerms(query)
	if k <= 0 || len(terms) == 0 {
		return nil, nil
	}
	freqs, total, err := s.DocFreqs(ctx, terms)
	if err != nil {
		return nil, err
	}
	var rare []string
	for i, t := range terms {
		if 2*freqs[i] <= total {
			rare = append(rare, t)
		}
	}
	if len(rare) > 0 {
		terms = rare
	}
	match := orQuery(terms)
	where := "r.collection = ?"
	args := []any{match, s.c.name}
	rest := map[string]string{}
	for key, v := range filter {
		switch key {
		case vectorstore.KeySource:
			where += " AND r.source = ?"
			args = append(args, v)
		case vectorstore.KeyVersion:
			where += " AND r.version = ?"
			args = append(args, v)
		default:
			rest[key] = v
		}
	}
	// FTS5 ranks its matches first (ORDER BY rank: bm25()), and only the
	// best `fetch` of them are joined with the chunks and the commit
	// records: a query of common words matches most chunks, and joining
	// every match costs more than ranking it. When too few of them are
	// visible (other collections, versions not committed, other filters),
	// the next attempt fetches four times as many, until FTS5 has no more.
	for fetch := max(4*k, 64); ; fetch *= 4 {
		out, err := s.lexicalPage(ctx, where, args, rest, k, fetch)
		if err != nil || len(out) >= k {
			return out, err
		}
		var n int // did FTS5 have more than fetch matches?
		err = s.f.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT rowid FROM records_fts WHERE records_fts MATCH ? LIMIT ?)`, match, fetch+1).Scan(&n)
		if err != nil || n <= fetch {
			return out, s.f.readErr(err)
		}
	}
}

// lexicalPage runs one attempt of LexicalQuery over the best fetch matches of
// FTS5 and returns the visible hits, at most k.
func (s *Store) lexicalPage(ctx context.Context, where string, args []any, rest map[string]string, k, fetch int) ([]vectorstore.Hit, error) {
	q := `SELECT r.id, r.source, r.chunk, r.version, r.written, r.text, r.metadata, -f.rank AS score
		FROM (SELECT rowid, rank FROM records_fts WHERE records_fts MATCH ? ORDER BY rank LIMIT ?) f
		JOIN records r ON r.rid = f.rowid
		JOIN versions v ON v.collection = r.collection AND v.source = r.source AND v.version = r.version
		WHERE ` + where + `
		ORDER BY f.rank, r.id`
	rows, err := s.f.db.QueryContext(ctx, q, append([]any{args[0], fetch}, args[1:]...)...)
	if err != nil {
		return nil, s.f.readErr(err)
	}
	defer rows.Close()
	var out []vectorstore.Hit
	for rows.Next() && len(out) < k {
		var r vectorstore.Record
		var md sql.NullString
		var score float64
		if err := rows.Scan(&r.ID, &r.Source, &r.Chunk, &r.Version, &r.Written, &r.Text, &md, &score); err != nil {
			return nil, s.f.readErr(err)
		}
		if r.Metadata, err = decodeMetadata(md.String); err != nil {
			return nil, err
		}
		if !matchRecord(r, rest) {
			continue
		}
		out = append(out, vectorstore.Hit{ID: r.ID, Source: r.Source, Chunk: r.Chunk, Text: r.Text,
			Metadata: cloneMetadata(r.Metadata), Score: float32(score), Version: r.Version})
	}
	return out, s.f.readErr(rows.Err())
}

// ftsTerms returns the distinct words of text (letters and digits,
// lower-cased), sorted, at most maxLexicalTerms.
func ftsTerms(text string) []string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	slices.Sort(words)
	words = slices.Compact(words)
	return words[:min(len(words), maxLexicalTerms)]
}

// orQuery is the FTS5 query that matches any of terms: each a quoted string
// (no character of it is FTS5 syntax), joined by OR.
func orQuery(terms []string) string {
	q := make([]string, len(terms))
	for i, t := range terms {
		q[i] = `"` + t + `"`
	}
	return strings.Join(q, " OR ")
}

// ftsQuery turns free text into an FTS5 query that matches any of its words;
// empty when it has none.
func ftsQuery(text string) string { return orQuery(ftsTerms(text)) }

// DocFreqs implements vectorstore.Lexical: the chunks of the file whose
// text holds each term (as the index's tokenizer normalises it), and the
// chunks of the file. Counts are cached until the next write to the file.
func (s *Store) DocFreqs(ctx context.Context, terms []string) ([]int, int, error) {
	f := s.f
	f.dfMu.Lock()
	defer f.dfMu.Unlock()
	if gen := f.gen.Load(); f.dfGen != gen || f.df == nil {
		f.df, f.dfTotal, f.dfGen = map[string]int{}, -1, gen
	}
	if f.dfTotal < 0 {
		if err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&f.dfTotal); err != nil {
			f.dfTotal = -1
			return nil, 0, f.readErr(err)
		}
	}
	out := make([]int, len(terms))
	for i, t := range terms {
		n, ok := f.df[t]
		if !ok {
			if q := ftsQuery(t); q != "" {
				if err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM records_fts WHERE records_fts MATCH ?`, q).Scan(&n); err != nil {
					return nil, 0, f.readErr(err)
				}
			}
			if len(f.df) >= maxCachedTerms {
				clear(f.df)
			}
			f.df[t] = n
		}
		out[i] = n
	}
	return out, f.dfTotal, nil
}

// maxCachedTerms bounds the document frequencies cached between writes.
const maxCachedTerms = 100000
