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

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// containerShare is the part of the container's memory limit the Go runtime
// aims to stay under when no limit is given: the rest is for what the
// runtime does not count (the binary's mapped pages, C stacks).
const containerShare = 0.9

// cgroupLimitFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memoryLimit returns the Go runtime's soft memory limit in bytes and where
// it comes from, or 0 when the manager sets none:
//
//   - --memory-limit, a quantity ("200Mi"); "0" sets none;
//   - else GOMEMLIMIT, which the runtime applied already (0 here);
//   - else 90% of the container's memory limit (its cgroup's), if any.
//
// Near the limit the garbage collector runs more often instead of letting
// the heap grow; it is soft: a live heap above it is not an error.
func memoryLimit(flag string, getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string, error) {
	if flag != "" {
		q, err := resource.ParseQuantity(flag)
		if err != nil || q.Sign() < 0 {
			return 0, "", fmt.Errorf("--memory-limit=%s: want a quantity of bytes such as 200Mi, or 0 for none", flag)
		}
		return q.Value(), "--memory-limit", nil
	}
	if getenv("GOMEMLIMIT") != "" {
		return 0, "GOMEMLIMIT", nil
	}
	for _, f := range cgroupLimitFiles {
		raw, err := readFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit: %w", err)
		}
		s := strings.TrimSpace(string(raw))
		if s == "max" {
			return 0, f, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit from %s: %q", f, s)
		}
		// cgroup v1 writes a page-aligned "no limit" near the int64 maximum.
		if n <= 0 || n >= math.MaxInt64/2 {
			return 0, f, nil
		}
		return int64(float64(n) * containerShare), f, nil
	}
	return 0, "", nil
}

// defaultReadFile is os.ReadFile, for memoryLimit.
var defaultReadFile = os.ReadFile
