// Package rag is the retrieval-augmented generation pipeline of the RAG
// server, independent of HTTP.
//
// Ingest splits documents into chunks with deterministic IDs (source, chunk
// index and content hash), embeds only the chunks the store does not already
// hold, in batches with bounded concurrency, upserts them and then removes the
// chunks the new version no longer has. Re-ingesting unchanged content costs
// no embedding call and changes nothing; several replicas may ingest the same
// documents at once.
//
// Query embeds the question, retrieves the top-k chunks and either asks the
// chat model with a prompt that numbers the passages and asks for citations
// (generative mode) or quotes the best sentences of the best passages
// (extractive mode, the offline default).
package rag
