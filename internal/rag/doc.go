// Package rag is the retrieval-augmented generation pipeline of the RAG
// server, independent of HTTP.
//
// Ingest splits documents into chunks and writes each changed document as a
// new version: its chunks first (invisible), then one commit record that makes
// the whole version visible at once, then the old version's chunks are
// deleted (see package vectorstore). Readers see each document at one version,
// never a mix, whatever is cut off or killed midway. Re-ingesting unchanged
// content costs no embedding call and no write; a changed document reuses the
// stored embedding of every chunk whose text it kept. Several replicas may
// ingest at once: every write attempt has its own version, so none can
// delete another's chunks. Maintain collects what interrupted attempts left.
//
// Query embeds the question, retrieves the top-k chunks of committed versions
// and either asks the chat model with a prompt that numbers the passages and
// asks for citations (generative mode) or quotes the best sentences of the
// best passages (extractive mode, the offline default).
package rag
