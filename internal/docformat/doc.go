/*
Copyright 2026 The ragops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package docformat turns document files into plain text records: the one
// place that knows file formats. The server's upload path (POST /documents,
// multipart), the DOCS_DIR loader and the declarative-source indexer all call
// Extract (or ExtractAll), so a format works the same everywhere.
//
// Formats, by file extension (case-insensitive):
//   - .txt, .text, .md, .markdown: UTF-8 text, as is.
//   - .html, .htm: the visible text of the page (golang.org/x/net/html, in a
//     streaming tokenizer, so memory stays proportional to the input);
//     scripts, styles, navigation, page headers and footers, forms and
//     drawings are dropped; the charset is UTF-8 or the one the page declares.
//   - .pdf: poppler's pdftotext, run as a child process with a time limit,
//     an address-space limit and a bounded output; without pdftotext on the
//     PATH a PDF is unsupported (ErrUnsupported, with the reason).
//   - .json (one record or an array of records) and .jsonl (one record per
//     line): each record's text field is "text", else "content", else
//     "body"; "id" names the record (source "file#id"); other short scalar
//     fields become metadata.
//
// Every file is bounded: MaxFileBytes of input, MaxTextBytes of text,
// MaxRecords records, PDFTimeout per PDF. Errors wrap ErrUnsupported or
// ErrUnreadable and carry a one-line reason.
package docformat
