package chromastore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/ragops/ragops/internal/vectorstore"
)

// VersionsCollection names the collection of the commit records of a
// collection. The underscore keeps it apart from every collection name the
// server derives (a prefix and a slug of the model: letters, digits, '.' and
// '-'), so that no embedding model's collection can be another's versions.
func VersionsCollection(name string) string { return name + "_versions" }

func (s *Store) versions(ctx context.Context) (chroma.Collection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vers != nil {
		return s.vers, nil
	}
	c, err := s.client.GetOrCreateCollection(ctx, VersionsCollection(s.name),
		chroma.WithEmbeddingFunctionCreate(precomputed{}),
		chroma.WithDisableEFConfigStorage(),
	)
	if err != nil {
		return nil, err
	}
	s.vers = c
	return c, nil
}

// fromMetadata splits Chroma metadata into the record's fields and its user
// metadata.
func fromMetadata(md chroma.DocumentMetadata) vectorstore.Record {
	r := vectorstore.Record{Metadata: map[string]string{}}
	impl, ok := md.(*chroma.DocumentMetadataImpl)
	if !ok || impl == nil {
		return r
	}
	for _, k := range impl.Keys() {
		switch k {
		case vectorstore.KeySource:
			r.Source, _ = md.GetString(k)
		case vectorstore.KeyVersion:
			r.Version, _ = md.GetString(k)
		case vectorstore.KeyChunk:
			r.Chunk = int(intValue(md, k))
		case vectorstore.KeyWritten:
			r.Written = intValue(md, k)
		default:
			if v, ok := md.GetString(k); ok {
				r.Metadata[k] = v
			} else if v, ok := md.GetRaw(k); ok {
				r.Metadata[k] = fmt.Sprint(v)
			}
		}
	}
	return r
}

// intValue reads an integer attribute, which Chroma's JSON gives back as a
// float.
func intValue(md chroma.DocumentMetadata, k string) int64 {
	if f, ok := md.GetFloat(k); ok {
		return int64(f)
	}
	n, _ := md.GetInt(k)
	return n
}

// Scan implements vectorstore.Store: offset pages, each its own request
// under its own timeout, so that a scan of any size completes.
func (s *Store) Scan(ctx context.Context, filter map[string]string, withEmbeddings bool, fn func([]vectorstore.Record) error) error {
	include := []chroma.Include{chroma.IncludeMetadatas, chroma.IncludeDocuments}
	if withEmbeddings {
		include = append(include, chroma.IncludeEmbeddings)
	}
	w := where(filter)
	for offset := 0; ; offset += pageSize {
		page, err := s.scanPage(ctx, w, include, offset)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
	}
}

func (s *Store) scanPage(ctx context.Context, w chroma.WhereClause, include []chroma.Include, offset int) ([]vectorstore.Record, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	coll, err := s.collection(ctx)
	if err != nil {
		return nil, s.wrap("get", err)
	}
	opts := []chroma.CollectionGetOption{chroma.WithInclude(include...), chroma.WithLimit(pageSize), chroma.WithOffset(offset)}
	if w != nil {
		opts = append(opts, chroma.WithWhere(w))
	}
	res, err := coll.Get(ctx, opts...)
	for try := 0; err != nil && try < 3 && strings.Contains(err.Error(), "error unmarshalling") && ctx.Err() == nil; try++ {
		res, err = coll.Get(ctx, opts...) // a record deleted meanwhile: see Query
	}
	if err != nil {
		return nil, s.wrap("get", err)
	}
	ids, mds, docs, embs := res.GetIDs(), res.GetMetadatas(), res.GetDocuments(), res.GetEmbeddings()
	page := make([]vectorstore.Record, len(ids))
	for i, id := range ids {
		var r vectorstore.Record
		if i < len(mds) {
			r = fromMetadata(mds[i])
		}
		r.ID = string(id)
		if i < len(docs) && docs[i] != nil {
			r.Text = docs[i].ContentString()
		}
		if i < len(embs) && embs[i] != nil {
			r.Embedding = embs[i].ContentAsFloat32()
		}
		page[i] = r
	}
	return page, nil
}

// versionID is the ID of a source's commit record.
func versionID(source string) chroma.DocumentID {
	h := sha256.Sum256([]byte(source))
	return chroma.DocumentID(hex.EncodeToString(h[:16]))
}

// Commit implements vectorstore.Store.
func (s *Store) Commit(ctx context.Context, versions ...vectorstore.SourceVersion) error {
	defer s.lex.Invalidate() // even a failed commit may have landed
	for batch := range slices.Chunk(versions, pageSize) {
		if err := s.commit(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) commit(ctx context.Context, batch []vectorstore.SourceVersion) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vers, err := s.versions(ctx)
	if err != nil {
		return s.wrap("commit", err)
	}
	ids := make([]chroma.DocumentID, len(batch))
	texts := make([]string, len(batch))
	embs := make([]embeddings.Embedding, len(batch))
	mds := make([]chroma.DocumentMetadata, len(batch))
	for i, v := range batch {
		ids[i] = versionID(v.Source)
		texts[i] = v.Source
		embs[i] = embeddings.NewEmbeddingFromFloat32([]float32{1})
		mds[i] = chroma.NewDocumentMetadata(
			chroma.NewStringAttribute(vectorstore.KeySource, v.Source),
			chroma.NewStringAttribute(vectorstore.KeyVersion, v.Version),
			chroma.NewIntAttribute("chunks", int64(v.Chunks)),
			chroma.NewStringAttribute("origin", v.Origin),
			chroma.NewIntAttribute("updated", v.Updated),
		)
	}
	err = vers.Upsert(ctx, chroma.WithIDs(ids...), chroma.WithTexts(texts...), chroma.WithEmbeddings(embs...), chroma.WithMetadatas(mds...))
	return s.wrap("commit", err)
}

func toVersion(md chroma.DocumentMetadata) vectorstore.SourceVersion {
	var v vectorstore.SourceVersion
	if md == nil {
		return v
	}
	v.Source, _ = md.GetString(vectorstore.KeySource)
	v.Version, _ = md.GetString(vectorstore.KeyVersion)
	v.Origin, _ = md.GetString("origin")
	v.Chunks = int(intValue(md, "chunks"))
	v.Updated = intValue(md, "updated")
	return v
}

// getVersions runs one read of the commit records under its own timeout.
func (s *Store) getVersions(ctx context.Context, opts []chroma.CollectionGetOption, fn func(vectorstore.SourceVersion)) (int, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vers, err := s.versions(ctx)
	if err != nil {
		return 0, s.wrap("versions", err)
	}
	res, err := vers.Get(ctx, append(opts, chroma.WithInclude(chroma.IncludeMetadatas))...)
	if err != nil {
		return 0, s.wrap("versions", err)
	}
	for _, md := range res.GetMetadatas() {
		if v := toVersion(md); v.Source != "" {
			fn(v)
		}
	}
	return len(res.GetIDs()), nil
}

// Versions implements vectorstore.Store.
func (s *Store) Versions(ctx context.Context, sources []string) (map[string]vectorstore.SourceVersion, error) {
	out := map[string]vectorstore.SourceVersion{}
	for batch := range slices.Chunk(sources, pageSize) {
		ids := make([]chroma.DocumentID, len(batch))
		for i, src := range batch {
			ids[i] = versionID(src)
		}
		_, err := s.getVersions(ctx, []chroma.CollectionGetOption{chroma.WithIDs(ids...)},
			func(v vectorstore.SourceVersion) { out[v.Source] = v })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ScanVersions implements vectorstore.Store. Chroma returns records in
// insertion order, so the versions are read in full, then sorted.
func (s *Store) ScanVersions(ctx context.Context, fn func([]vectorstore.SourceVersion) error) error {
	var all []vectorstore.SourceVersion
	for offset := 0; ; offset += pageSize {
		n, err := s.getVersions(ctx, []chroma.CollectionGetOption{chroma.WithLimit(pageSize), chroma.WithOffset(offset)},
			func(v vectorstore.SourceVersion) { all = append(all, v) })
		if err != nil {
			return err
		}
		if n < pageSize {
			break
		}
	}
	slices.SortFunc(all, func(a, b vectorstore.SourceVersion) int { return strings.Compare(a.Source, b.Source) })
	for page := range slices.Chunk(all, pageSize) {
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// Uncommit implements vectorstore.Store.
func (s *Store) Uncommit(ctx context.Context, source string) error {
	defer s.lex.Invalidate()
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vers, err := s.versions(ctx)
	if err != nil {
		return s.wrap("uncommit", err)
	}
	return s.wrap("uncommit", vers.Delete(ctx, chroma.WithIDs(versionID(source))))
}

var _ vectorstore.Dropper = (*Store)(nil)

// Drop implements vectorstore.Dropper: it deletes the commit records'
// collection first (every chunk becomes invisible: the store reads as
// empty), then the chunks' collection. A collection of another owner is
// refused, as for every other call. Dropping a store that does not exist
// (or a half-dropped one) gets and deletes what is left.
func (s *Store) Drop(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.collection(ctx); err != nil {
		if errors.Is(err, ErrForeignCollection) {
			return err
		}
		return s.wrap("drop", err)
	}
	if _, err := s.versions(ctx); err != nil {
		return s.wrap("drop", err)
	}
	s.lex.Invalidate()
	for _, name := range []string{VersionsCollection(s.name), s.name} {
		if err := s.client.DeleteCollection(ctx, name); err != nil {
			return s.wrap("drop", err)
		}
	}
	s.mu.Lock()
	s.coll, s.vers = nil, nil
	s.mu.Unlock()
	return nil
}
