package rag

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ragops/ragops/internal/vectorstore"
)

// MigrateOptions say which documents of the previous store Migrate copies.
type MigrateOptions struct {
	// Since, when set, copies only the documents committed in the previous
	// store at or after this Unix time (the catch-up after a cut-over: the
	// documents written there while its last readers still served).
	Since int64
	// OnlyNewer copies a document that this store holds with other content
	// only if the previous store's commit is newer: after the cut-over the
	// servers write this store, and their writes win over older ones.
	OnlyNewer bool
	// Prune deletes the documents of the API that this store holds and the
	// previous store does not (a removed document, or what an abandoned
	// switch left): only before the cut-over, while no server writes here.
	Prune bool
}

// MigrateResult counts what Migrate did, in documents (sources) and chunks.
type MigrateResult struct {
	// Documents and Chunks were copied, re-embedded with this store's model.
	Documents int `json:"documents"`
	Chunks    int `json:"chunks"`
	// Unchanged documents were already here with the same content; Kept
	// ones are here with other content that is newer (OnlyNewer) or owned
	// by a declared source.
	Unchanged int `json:"unchanged"`
	Kept      int `json:"kept"`
	// Pruned documents were deleted (Prune).
	Pruned int `json:"pruned"`
}

// MigrateBatch is the number of documents Migrate copies (and commits) at a
// time; MigrateBatchBytes bounds the text it holds, as SyncBatchBytes does
// for a sync. Memory does not grow with the size of the previous store.
const (
	MigrateBatch      = SyncBatch
	MigrateBatchBytes = SyncBatchBytes
)

// Migrate copies the documents added through the API (commit records with
// no origin) from prev, a store of another embedding model, into this
// service's store: it reads each document's committed chunks through Scan
// and re-embeds their stored text with this service's model, keeping the
// source name, the chunk order and the metadata. The declared sources are
// not its business (the indexer syncs them into this store).
//
// It streams: one page of prev's commit records at a time, MigrateBatch
// documents (or MigrateBatchBytes of text) embedded and committed at a time,
// with the batching of ingestion. Each document is written like Ingest
// writes it: chunks of a new version first (invisible), one commit record,
// then the replaced version's chunks deleted. A crash at any instant leaves
// every document at its previous or its copied version, plus invisible
// chunks that Maintain collects; a re-run skips what is already here (the
// content digest of a version does not depend on the model) at no embedding
// cost.
func (s *Service) Migrate(ctx context.Context, prev vectorstore.Store, opts MigrateOptions) (MigrateResult, error) {
	var res MigrateResult
	var batch []vectorstore.SourceVersion
	var copyErr error // the copy's own error, already typed
	err := prev.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			if v.Origin != "" || v.Updated < opts.Since {
				continue
			}
			batch = append(batch, v)
			if len(batch) >= MigrateBatch {
				if copyErr = s.migrateBatch(ctx, prev, batch, opts, &res); copyErr != nil {
					return copyErr
				}
				batch = batch[:0]
			}
		}
		return nil
	})
	if copyErr != nil {
		return res, copyErr
	}
	if err != nil {
		return res, storeErr(ctx, err)
	}
	if err := s.migrateBatch(ctx, prev, batch, opts, &res); err != nil {
		return res, err
	}
	if opts.Prune {
		if err := s.migratePrune(ctx, prev, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// migrateBatch copies the documents of vs that are not here already, in
// groups bounded by MigrateBatchBytes.
func (s *Service) migrateBatch(ctx context.Context, prev vectorstore.Store, vs []vectorstore.SourceVersion, opts MigrateOptions, res *MigrateResult) error {
	if len(vs) == 0 {
		return nil
	}
	sources := make([]string, len(vs))
	for i, v := range vs {
		sources[i] = v.Source
	}
	defer s.locks.lock(sources)()
	cur, err := s.store.Versions(ctx, sources)
	if err != nil {
		return storeErr(ctx, err)
	}
	now := time.Now().Unix()
	var toEmbed []vectorstore.Record
	var commits []vectorstore.SourceVersion
	var stale []string
	bytes := 0
	flush := func() error {
		if len(commits) == 0 {
			return nil
		}
		if err := s.embedAndUpsert(ctx, toEmbed, nil); err != nil {
			return err
		}
		if err := s.store.Commit(ctx, commits...); err != nil {
			return storeErr(ctx, err)
		}
		res.Documents += len(commits)
		res.Chunks += len(toEmbed)
		// The replaced versions are invisible now; a failed delete leaves
		// garbage for Maintain.
		if err := s.store.Delete(ctx, stale); err == nil {
			s.opts.Metrics.Chunks(len(toEmbed), len(stale))
		}
		toEmbed, commits, stale, bytes = nil, nil, nil, 0
		return nil
	}
	for _, v := range vs {
		here, has := cur[v.Source]
		switch {
		case has && here.Origin != "":
			res.Kept++ // a declared source of that name owns it here
			continue
		case has && here.Version != "" && versionDigest(here.Version) == versionDigest(v.Version):
			res.Unchanged++
			continue
		case has && opts.OnlyNewer && here.Updated >= v.Updated:
			res.Kept++
			continue
		}
		var recs []vectorstore.Record
		err := prev.Scan(ctx, map[string]string{vectorstore.KeySource: v.Source}, false, func(page []vectorstore.Record) error {
			for _, r := range page {
				if r.Version == v.Version {
					recs = append(recs, r)
				}
			}
			return nil
		})
		if err != nil {
			return storeErr(ctx, err)
		}
		if len(recs) == 0 {
			continue // deleted meanwhile: its commit record is gone too, or going
		}
		slices.SortFunc(recs, func(a, b vectorstore.Record) int { return a.Chunk - b.Chunk })
		texts := make([]string, len(recs))
		for i, r := range recs {
			texts[i] = r.Text
		}
		dig := versionDigest(v.Version)
		if dig == "" {
			dig = digest(recs[0].Metadata, texts) // a legacy version: no digest in its name
		}
		version := newVersion(dig)
		for i, r := range recs {
			toEmbed = append(toEmbed, vectorstore.Record{ID: RecordID(v.Source, version, i), Source: v.Source, Chunk: i,
				Text: r.Text, Metadata: r.Metadata, Version: version, Written: now})
			bytes += len(r.Text)
		}
		if has {
			err := s.store.Scan(ctx, map[string]string{vectorstore.KeySource: v.Source}, false, func(page []vectorstore.Record) error {
				for _, r := range page {
					if r.Version == here.Version {
						stale = append(stale, r.ID)
					}
				}
				return nil
			})
			if err != nil {
				return storeErr(ctx, err)
			}
		}
		// The commit keeps the time the document was written: a catch-up
		// compares it with the previous store's.
		commits = append(commits, vectorstore.SourceVersion{Source: v.Source, Version: version, Chunks: len(recs), Updated: v.Updated})
		if bytes >= MigrateBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// migratePrune deletes the documents of the API here that prev does not
// hold. It lists them first (deleting while paging would skip some).
func (s *Service) migratePrune(ctx context.Context, prev vectorstore.Store, res *MigrateResult) error {
	var gone []string
	err := s.store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		var api []string
		for _, v := range page {
			if v.Origin == "" {
				api = append(api, v.Source)
			}
		}
		if len(api) == 0 {
			return nil
		}
		there, err := prev.Versions(ctx, api)
		if err != nil {
			return err
		}
		for _, src := range api {
			if _, ok := there[src]; !ok {
				gone = append(gone, src)
			}
		}
		return nil
	})
	if err != nil {
		return storeErr(ctx, err)
	}
	for _, src := range gone {
		n, err := s.deleteSource(ctx, src, func(v vectorstore.SourceVersion) bool { return v.Origin == "" })
		if err != nil {
			return fmt.Errorf("prune %q: %w", src, err)
		}
		if n > 0 {
			res.Pruned++
		}
	}
	return nil
}
