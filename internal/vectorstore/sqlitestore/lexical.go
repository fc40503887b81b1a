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
func (s *Store) LexicalQuery(ctx context.Context, query string, k int, filter map[string]string) ([]vectorstore.Hit, error) {
	match := ftsQuery(query)
	if k <= 0 || match == "" {
		return nil, nil
	}
	where := "records_fts MATCH ? AND r.collection = ?"
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
	// Without other filters SQLite stops at k rows; with them, rows are read
	// best first until k pass.
	limit := ""
	if len(rest) == 0 {
		limit = " LIMIT ?"
		args = append(args, k)
	}
	rows, err := s.f.db.QueryContext(ctx, `SELECT r.id, r.source, r.chunk, r.version, r.written, r.text, r.metadata, -bm25(records_fts) AS score
		FROM records_fts
		JOIN records r ON r.rid = records_fts.rowid
		JOIN versions v ON v.collection = r.collection AND v.source = r.source AND v.version = r.version
		WHERE `+where+`
		ORDER BY score DESC, r.id`+limit, args...)
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

// ftsQuery turns free text into an FTS5 query that matches any of its words:
// each distinct word (letters and digits, lower-cased) as a quoted string,
// joined by OR, so that no character of the text is FTS5 syntax. Empty when
// the text has no word.
func ftsQuery(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	seen := map[string]bool{}
	var terms []string
	for _, w := range words {
		if !seen[w] && len(terms) < maxLexicalTerms {
			seen[w] = true
			terms = append(terms, `"`+w+`"`)
		}
	}
	slices.Sort(terms)
	return strings.Join(terms, " OR ")
}
