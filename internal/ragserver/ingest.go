package ragserver

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/docformat"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/sources"
	"github.com/ragops/ragops/internal/vectorstore"
)

// SourceOrigin is the origin (see rag.KeyOrigin) of the documents of the
// declared source name, and prefix the start of their names. The reserved
// source of documents.configMapRef keeps what the server's start-up
// ingestion of its mounted ConfigMap (DOCS_DIR) used: the origin
// rag.OriginDocsDir and the bare key as the name, so that an index built by
// an older server is re-synced in place, without re-embedding.
func SourceOrigin(name string) (origin, prefix string) {
	if name == contract.ConfigMapSourceName {
		return rag.OriginDocsDir, ""
	}
	return "source:" + name, name + "/"
}

// ParseSources reads RAGOPS_SOURCES: spec.documents as JSON. It returns the
// sources to index in order, configMapRef first as the source named
// contract.ConfigMapSourceName.
func ParseSources(raw string) (ragv1alpha1.DocumentsSource, []ragv1alpha1.DocumentSource, error) {
	var docs ragv1alpha1.DocumentsSource
	if strings.TrimSpace(raw) == "" {
		return docs, nil, fmt.Errorf("%s is not set: it holds spec.documents as JSON", contract.EnvSources)
	}
	if err := json.Unmarshal([]byte(raw), &docs); err != nil {
		return docs, nil, fmt.Errorf("%s is not the JSON of spec.documents: %w", contract.EnvSources, err)
	}
	var list []ragv1alpha1.DocumentSource
	if docs.ConfigMapRef != nil {
		list = append(list, ragv1alpha1.DocumentSource{Name: contract.ConfigMapSourceName, ConfigMap: docs.ConfigMapRef})
	}
	seen := map[string]bool{}
	for _, s := range append(list, docs.Sources...) {
		if seen[s.Name] {
			return docs, nil, fmt.Errorf("%s: the source name %q is used twice", contract.EnvSources, s.Name)
		}
		seen[s.Name] = true
	}
	list = append(list, docs.Sources...)
	if len(list) == 0 {
		return docs, nil, fmt.Errorf("%s declares no source", contract.EnvSources)
	}
	return docs, list, nil
}

// FileDocuments turns a file of a source into the documents to index, or
// says why it is skipped. It is the one place that decides which formats the
// indexer reads: what DOCS_DIR and POST /documents read (package docformat:
// text, Markdown, HTML, PDF, JSON records). A document is named by the
// file's path in its source ("dir/a.jsonl#id" for a JSON record); parts of a
// file left out (a bad JSON line) come back as skipped.
func FileDocuments(ctx context.Context, name string, data []byte) ([]rag.Document, []docformat.Skipped, error) {
	recs, parts, err := docformat.ExtractAll(ctx, name, data)
	if err != nil {
		return nil, nil, err
	}
	base := path.Base(name)
	for i := range recs {
		// docformat names a record after the file's base name.
		if rest, ok := strings.CutPrefix(recs[i].Source, base); ok {
			recs[i].Source = name + rest
		}
	}
	return rag.DocumentsFrom(recs), parts, nil
}

// runIngest is "ragserver ingest": it indexes every declared source into the
// store of the server's configuration and writes a contract.IndexReport.
//
// A source that cannot be read is reported with its error and its documents
// in the index are kept as they were (no pruning after a partial listing);
// the other sources go on. The run fails (non-zero exit) only when the store
// or the embedding model fails, or the configuration is invalid: then the
// report says which source was being indexed.
//
// A kill at any instant leaves each document at its previous or its new
// version, never a mix (rag.Service.Ingest); documents of a source are
// pruned only after its whole listing went in, so a kill never removes a
// document still in a source. A re-run skips, at no embedding cost, what the
// killed run wrote, and finishes the rest; the invisible chunks of the write
// in flight are collected by the server's maintenance.
func runIngest(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	docs, list, err := ParseSources(getenv(contract.EnvSources))
	if err != nil {
		return err
	}
	mountDir := orDefault(getenv(contract.EnvSourcesMountDir), contract.SourcesMountDir)
	reportPath := orDefault(getenv(contract.EnvIndexReportPath), contract.IndexReportPath)

	s, log, err := oneShotServer(cfg, stdout)
	if err != nil {
		return err
	}
	defer s.svc.Store().Close()

	start := time.Now()
	var report contract.IndexReport
	origins := map[string]bool{}
	var fatal error
	for _, src := range list {
		origin, _ := SourceOrigin(src.Name)
		origins[origin] = true
		if fatal != nil {
			continue
		}
		rep, err := indexSource(ctx, s.svc, log, docs, src, filepath.Join(mountDir, src.Name))
		report.Sources = append(report.Sources, rep)
		fatal = err
	}
	if fatal == nil {
		report.Documents, report.Chunks, fatal = totals(ctx, s.svc.Store(), origins)
	}
	if err := writeReport(reportPath, report); err != nil {
		log.Error("Cannot write the index report", "path", reportPath, "error", err.Error())
		if fatal == nil {
			fatal = err
		}
	}
	if fatal != nil {
		return fmt.Errorf("indexing failed: %w", fatal)
	}
	log.Info("Indexing done", "documents", report.Documents, "chunks", report.Chunks,
		"sources", len(report.Sources), "duration", time.Since(start).String())
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// indexSource syncs one source. The error is fatal (the store or the
// embedding model failed, or ctx ended); a source that cannot be read is
// oneShotServer opens the store and the model clients of a one-shot
// subcommand (ingest, migrate) as the server would, with the same redacted
// JSON log on stdout; it serves nothing.
func oneShotServer(cfg Config, stdout io.Writer) (*server, *slog.Logger, error) {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	sec := newSecrets(cfg)
	log := slog.New(newRedactHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}), sec.values))
	s, err := newServer(cfg, log, sec)
	return s, log, err
}

// reported in the SourceReport instead.
func indexSource(ctx context.Context, svc *rag.Service, log *slog.Logger, docs ragv1alpha1.DocumentsSource, src ragv1alpha1.DocumentSource, dir string) (contract.SourceReport, error) {
	start := time.Now()
	rep := contract.SourceReport{Name: src.Name}
	origin, prefix := SourceOrigin(src.Name)
	lister, err := sources.New(src, dir)
	if err != nil {
		rep.Error = err.Error()
		log.Warn("Source cannot be read", "source", src.Name, "error", rep.Error)
		return rep, nil
	}
	y := svc.NewSyncer(origin)
	var fatal error
	skip := func(p, why string) {
		y.Keep(prefix + p) // its last good version stays
		rep.Skipped++
		if len(rep.SkippedFiles) < contract.MaxSkippedReported {
			rep.SkippedFiles = append(rep.SkippedFiles, [2]string{p, why})
		}
		log.Debug("Skipping file", "source", src.Name, "file", p, "reason", why)
	}
	rev, err := sources.Walk(ctx, lister, sources.NewFilter(docs, src), rag.MaxFileBytes, sources.Visitor{
		Skip: skip,
		File: func(p string, data []byte) error {
			ds, parts, err := FileDocuments(ctx, p, data)
			if err != nil {
				skip(p, err.Error())
				return nil
			}
			for _, part := range parts {
				log.Debug("Skipping part of a file", "source", src.Name, "file", p, "part", part.Where, "reason", part.Reason)
			}
			for _, d := range ds {
				d.Source = prefix + d.Source
				if err := y.Add(ctx, d); err != nil {
					fatal = err
					return err
				}
			}
			rep.Indexed++
			return nil
		},
	})
	if fatal == nil && ctx.Err() != nil {
		fatal = ctx.Err()
	}
	if fatal != nil {
		rep.Error = fatal.Error()
		return rep, fatal
	}
	if err != nil {
		// A partial listing: what was read goes in, nothing is pruned.
		rep.Error = err.Error()
		log.Warn("Source cannot be read; its documents in the index are kept", "source", src.Name, "error", rep.Error)
		if ferr := y.Flush(ctx); ferr != nil {
			return rep, ferr
		}
		return rep, nil
	}
	res, err := y.Prune(ctx)
	if err != nil {
		rep.Error = err.Error()
		return rep, err
	}
	rep.Revision = rev
	log.Info("Source indexed", "source", src.Name, "revision", rev, "files", rep.Indexed, "skipped", rep.Skipped,
		"added", res.Added, "reused", res.Reused, "unchanged", res.Unchanged, "pruned_sources", len(res.Pruned),
		"duration", time.Since(start).String())
	return rep, nil
}

// totals counts the documents and chunks of the given origins in the index.
func totals(ctx context.Context, store vectorstore.Store, origins map[string]bool) (docs, chunks int64, err error) {
	err = store.ScanVersions(ctx, func(page []vectorstore.SourceVersion) error {
		for _, v := range page {
			if origins[v.Origin] {
				docs++
				chunks += int64(v.Chunks)
			}
		}
		return nil
	})
	return docs, chunks, err
}

// FitReport returns the report's JSON within contract.MaxIndexReportBytes:
// it drops the skipped-file details first, then shortens the errors.
func FitReport(r contract.IndexReport) []byte {
	b, _ := json.Marshal(r)
	if len(b) <= contract.MaxIndexReportBytes {
		return b
	}
	r.Sources = append([]contract.SourceReport(nil), r.Sources...)
	for i := range r.Sources {
		r.Sources[i].SkippedFiles = nil
	}
	for _, limit := range []int{256, 64, 16, 0} {
		b, _ = json.Marshal(r)
		if len(b) <= contract.MaxIndexReportBytes {
			return b
		}
		for i := range r.Sources {
			if e := r.Sources[i].Error; len(e) > limit {
				r.Sources[i].Error = strings.ToValidUTF8(e[:limit], "") + "…"
			}
		}
	}
	b, _ = json.Marshal(r)
	return b
}

func writeReport(path string, r contract.IndexReport) error {
	return os.WriteFile(path, FitReport(r), 0o644)
}
