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

// Package version holds the version of the ragops binaries. It is set at
// build time with
//
//	-ldflags "-X github.com/ragops/ragops/internal/version.Version=<version>"
//
// (and Commit likewise) and defaults to the version in the repository's
// VERSION file.
package version

// Version is the ragops release this binary belongs to. The operator uses it
// to pick the default RAG server image, so that a new operator version rolls
// out its matching server.
var Version = "0.1.0"

// Commit is the git commit the binary was built from, when known.
var Commit = "unknown"
