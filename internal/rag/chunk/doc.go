// Package chunk splits documents into overlapping chunks for retrieval.
//
// Text is split by paragraph (blank lines) and then by sentence; sentences are
// packed greedily into chunks of at most Size runes, and each chunk starts with
// up to Overlap runes of whole words from the end of the previous chunk. A chunk
// is never cut inside a word: a single word longer than Size becomes a chunk of
// its own.
package chunk
