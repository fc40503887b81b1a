// Package sources reads the documents of a RagService's declared sources
// (spec.documents.sources): a Git repository, a list of HTTP(S) URLs, an
// S3-compatible bucket prefix, or a mounted directory (a PersistentVolumeClaim
// or a ConfigMap). Each kind is a Lister that streams its files one at a time
// and reports a content revision; Walk applies the include and exclude
// patterns and the size limit, and hands each file's bytes to the caller, so
// that the memory of an indexing run is bounded by one file, never by the
// source.
//
// Credentials come from the files of the source's mounted Secret
// (contract.SourcesMountDir/<source>/secret): see New.
package sources
