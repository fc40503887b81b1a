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
	"strconv"
	"strings"
	"time"

	"github.com/ragops/ragops/internal/contract"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/vectorstore"
)

// migrateArgs takes the flags of "ragserver migrate" off args (--from MODEL,
// --keep-previous), over their environment variables, and returns the rest
// for LoadConfig.
func migrateArgs(args []string, getenv func(string) string) (from string, keep bool, rest []string, err error) {
	from = getenv(contract.EnvMigrateFromModel)
	keep = getenv(contract.EnvKeepPreviousCollection) == "true"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--from" || a == "-from":
			if i+1 == len(args) {
				return "", false, nil, errors.New("--from needs the previous embedding model")
			}
			from = args[i+1]
			i++
		case strings.HasPrefix(a, "--from=") || strings.HasPrefix(a, "-from="):
			from = a[strings.Index(a, "=")+1:]
		case a == "--keep-previous" || a == "-keep-previous":
			keep = true
		default:
			rest = append(rest, a)
		}
	}
	return from, keep, rest, nil
}

// runMigrate is "ragserver migrate": it copies the documents added through
// the API from the collection of the previous embedding model
// (RAGOPS_MIGRATE_FROM_MODEL or --from) into the collection of
// EMBEDDING_MODEL, re-embedding their stored text (rag.Service.Migrate), and
// writes a contract.MigrationReport to RAGOPS_INDEX_REPORT (the termination
// message in a Job).
//
// The phase (RAGOPS_MIGRATE_PHASE) says what else it does:
//   - copy (the operator's Job before the cut-over): documents of the API
//     that the previous collection no longer holds are removed from the new
//     one, so that a switch back and forth converges.
//   - finalize (the operator's Job after the cut-over, once no server uses
//     the previous model): only documents committed there since
//     RAGOPS_MIGRATE_SINCE are copied, and only over older ones; then the
//     previous collection is deleted unless RAGOPS_KEEP_PREVIOUS_COLLECTION
//     is "true".
//   - all (the default, for a stopped standalone server): copy, then delete.
//
// A kill at any instant leaves each document of the new collection at its
// previous or copied version (never a mix) and the previous collection
// untouched until the copy is complete; a re-run copies what is missing at
// no cost for what is there. A kill during the delete leaves a previous
// collection without commit records (empty to every reader), which the
// re-run deletes.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	from, keep, rest, err := migrateArgs(args, getenv)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(rest, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	phase := orDefault(getenv(contract.EnvMigratePhase), contract.MigratePhaseAll)
	var since int64
	switch phase {
	case contract.MigratePhaseCopy, contract.MigratePhaseAll:
	case contract.MigratePhaseFinalize:
		if since, err = strconv.ParseInt(getenv(contract.EnvMigrateSince), 10, 64); err != nil || since <= 0 {
			return fmt.Errorf("%s must be Unix seconds in the %s phase, got %q", contract.EnvMigrateSince, phase, getenv(contract.EnvMigrateSince))
		}
	default:
		return fmt.Errorf("%s must be %s, %s or %s, got %q", contract.EnvMigratePhase,
			contract.MigratePhaseCopy, contract.MigratePhaseFinalize, contract.MigratePhaseAll, phase)
	}
	if from == "" {
		return fmt.Errorf("the previous embedding model is not set: pass --from MODEL or set %s", contract.EnvMigrateFromModel)
	}
	reportPath := orDefault(getenv(contract.EnvIndexReportPath), contract.IndexReportPath)

	s, log, err := oneShotServer(cfg, stdout)
	if err != nil {
		return err
	}
	defer s.svc.Store().Close()
	prevName := CollectionName(cfg.ChromaCollection, from)
	if prevName == s.collection {
		return fmt.Errorf("the previous model %q has the collection of %s %q: nothing to migrate", from, contract.EnvEmbeddingModel, cfg.EmbeddingModel)
	}
	prev, _, err := openStore(cfg, prevName)
	if err != nil {
		return err
	}
	defer prev.Close()

	start := time.Now()
	report := contract.MigrationReport{Phase: phase}
	opts := rag.MigrateOptions{Prune: phase != contract.MigratePhaseFinalize}
	if phase == contract.MigratePhaseFinalize {
		opts.Since, opts.OnlyNewer = since, true
	}
	res, err := s.svc.Migrate(ctx, prev, opts)
	if err == nil && phase != contract.MigratePhaseFinalize {
		// A second pass, which finds everything in place at the cost of
		// reads: Chroma pages the commit records by offset, so a record
		// deleted in the previous collection during the first pass's read
		// could have hidden another one from it.
		var again rag.MigrateResult
		again, err = s.svc.Migrate(ctx, prev, rag.MigrateOptions{})
		if again.Documents > 0 {
			log.Warn("The verification pass copied documents the first pass missed", "documents", again.Documents)
		}
		res.Documents += again.Documents
		res.Chunks += again.Chunks
	}
	report.Documents, report.Chunks = int64(res.Documents), int64(res.Chunks)
	report.Unchanged, report.Kept, report.Pruned = int64(res.Unchanged), int64(res.Kept), int64(res.Pruned)
	if err == nil && phase != contract.MigratePhaseCopy {
		if keep {
			log.Info("Keeping the previous collection", "collection", prevName)
		} else {
			err = dropStore(ctx, prev, prevName, log)
			report.Dropped = err == nil
		}
	}
	if werr := writeMigrationReport(reportPath, report); werr != nil {
		log.Error("Cannot write the migration report", "path", reportPath, "error", werr.Error())
		if err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("migration failed: %w", err)
	}
	log.Info("Migration done", "phase", phase, "from", prevName, "to", s.collection,
		"documents", res.Documents, "chunks", res.Chunks, "unchanged", res.Unchanged, "kept", res.Kept,
		"pruned", res.Pruned, "dropped", report.Dropped, "duration", time.Since(start).String())
	return nil
}

// dropStore deletes the previous collection when the store can.
func dropStore(ctx context.Context, prev vectorstore.Store, name string, log *slog.Logger) error {
	d, ok := prev.(vectorstore.Dropper)
	if !ok {
		log.Info("The store cannot delete a collection: the previous one stays", "collection", name)
		return nil
	}
	if err := d.Drop(ctx); err != nil {
		return fmt.Errorf("delete the previous collection %s: %w", name, err)
	}
	log.Info("Deleted the previous collection", "collection", name)
	return nil
}

func writeMigrationReport(path string, r contract.MigrationReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
