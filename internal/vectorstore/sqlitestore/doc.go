// Package sqlitestore is the embedded vector store of the RAG server: one
// SQLite database (modernc.org/sqlite, pure Go) under the data directory,
// DATA_DIR/ragops.db, holding one collection per embedding model. It is used
// when no Chroma URL is configured.
//
// The database runs in WAL mode with synchronous=FULL: a write that returned
// is on disk. Queries are exact: the cosine similarity to every vector of the
// collection, computed on an in-memory copy of the (normalised) vectors and
// metadata that Open loads and every committed write updates. Texts are read
// from the database for the hits only.
//
// # What a crash leaves behind
//
// Every write is one SQLite transaction, and SQLite's write-ahead log makes a
// transaction all or nothing whatever instant the process dies (kill -9, power
// loss): the next Open replays the committed part of the log and ignores the
// rest.
//
//   - Upsert: all of the batch's records, or none of them (the previous
//     contents of their IDs stay).
//   - Delete: all of the IDs deleted, or none.
//   - Commit: every commit record of the batch, or none; Uncommit: the record
//     gone, or still there. A source is therefore always at one version.
//   - Creating the schema: all the tables, or an empty file (a zero-length
//     database file, or a zero-length -wal file beside it, is a valid empty
//     database).
//   - Importing the old chromem-go directory (DATA_DIR/chromem): all of its
//     records and the meta row recording the import, in one transaction, or
//     nothing; the directory is then renamed to chromem.migrated. A crash
//     between the two leaves the import done and the directory in place: the
//     next Open sees the meta row and only renames it.
//
// A write that returned an error may still have been committed only if the
// error came from the final fsync; the in-memory copy is then reloaded.
//
// # Corruption
//
// Open refuses a file that is not a SQLite database or fails PRAGMA
// quick_check, with an error wrapping vectorstore.ErrCorrupt that names the
// file and says what to do (move it away and re-ingest, or restore a backup).
// It never resets the data. The same holds for an old chromem-go directory
// that cannot be read.
//
// One process at a time may use a data directory: the in-memory copy is not
// shared between processes.
package sqlitestore
