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
	"io/fs"
	"strings"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	v2, v1 := cgroupLimitFiles[0], cgroupLimitFiles[1]
	cases := []struct {
		name      string
		flag      string
		env       string
		files     map[string]string
		want      int64
		wantFrom  string
		wantError string
	}{
		{name: "flag", flag: "200Mi", files: map[string]string{v2: "268435456\n"}, want: 200 << 20, wantFrom: "--memory-limit"},
		{name: "flag zero is none", flag: "0", files: map[string]string{v2: "268435456\n"}, want: 0, wantFrom: "--memory-limit"},
		{name: "flag beats GOMEMLIMIT", flag: "1Gi", env: "100MiB", want: 1 << 30, wantFrom: "--memory-limit"},
		{name: "GOMEMLIMIT beats the container", env: "100MiB", files: map[string]string{v2: "268435456\n"}, want: 0, wantFrom: "GOMEMLIMIT"},
		{name: "cgroup v2 limit", files: map[string]string{v2: "268435456\n"}, want: 241591910, wantFrom: v2},
		{name: "cgroup v2 without limit", files: map[string]string{v2: "max\n"}, want: 0, wantFrom: v2},
		{name: "cgroup v1 limit", files: map[string]string{v1: "536870912\n"}, want: 483183820, wantFrom: v1},
		{name: "cgroup v1 without limit", files: map[string]string{v1: "9223372036854771712\n"}, want: 0, wantFrom: v1},
		{name: "no cgroup", want: 0, wantFrom: ""},
		{name: "bad flag", flag: "lots", wantError: "--memory-limit=lots"},
		{name: "negative flag", flag: "-1Mi", wantError: "--memory-limit=-1Mi"},
		{name: "unreadable cgroup", files: map[string]string{v2: "garbage"}, wantError: `"garbage"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.env
				}
				return ""
			}
			readFile := func(p string) ([]byte, error) {
				if s, ok := tc.files[p]; ok {
					return []byte(s), nil
				}
				return nil, fs.ErrNotExist
			}
			got, from, err := memoryLimit(tc.flag, getenv, readFile)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || from != tc.wantFrom {
				t.Errorf("memoryLimit = %d from %q, want %d from %q", got, from, tc.want, tc.wantFrom)
			}
		})
	}
}
