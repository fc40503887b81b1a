package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ragops/ragops/internal/contract"
)

// TestCRDMatchesContract: kubebuilder markers cannot reference Go constants,
// so the generated CRD is checked against the contract the server enforces.
func TestCRDMatchesContract(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "rag.ragops.dev_ragservices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	get := func(m any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				mm, ok := m.(map[string]any)
				if !ok {
					t.Fatalf("no %v in the CRD", path)
				}
				m = mm[k]
			case int:
				l, ok := m.([]any)
				if !ok || len(l) <= k {
					t.Fatalf("no %v in the CRD", path)
				}
				m = l[k]
			}
		}
		return m
	}
	spec := get(crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties")
	num := func(v any) string {
		if v == nil {
			return "none"
		}
		return fmt.Sprint(v)
	}
	for _, tt := range []struct {
		path         []any
		min, max     int
		def          string // "none": no default
		minAtLeastOK bool   // the API may be stricter than the server
	}{
		{[]any{"retrieval", "properties", "topK"}, contract.MinTopK, contract.MaxTopK, fmt.Sprint(contract.DefaultTopK), false},
		{[]any{"retrieval", "properties", "chunkSize"}, contract.MinChunkSize, contract.MaxChunkSize, fmt.Sprint(contract.DefaultChunkSize), false},
		{[]any{"retrieval", "properties", "chunkOverlap"}, contract.MinChunkOverlap, contract.MaxChunkOverlap, "none", false},
		{[]any{"server", "properties", "port"}, contract.MinPort, contract.MaxPort, fmt.Sprint(contract.DefaultPort), true},
		{[]any{"retrieval", "properties", "rerank", "properties", "topN"}, contract.MinRerankTopN, contract.MaxRerankTopN, fmt.Sprint(contract.DefaultRerankTopN), false},
	} {
		p := get(spec, tt.path...)
		lo, hi, def := num(get(p, "minimum")), num(get(p, "maximum")), num(get(p, "default"))
		minOK := lo == fmt.Sprint(tt.min)
		if tt.minAtLeastOK {
			var v int
			_, err := fmt.Sscan(lo, &v)
			minOK = err == nil && v >= tt.min
		}
		if !minOK || hi != fmt.Sprint(tt.max) || def != tt.def {
			t.Errorf("%v: CRD minimum %s maximum %s default %s, contract %d..%d default %s", tt.path, lo, hi, def, tt.min, tt.max, tt.def)
		}
	}
	// The indexer reports at most MaxSkippedReported skipped files per
	// source; status.index keeps them all.
	skipped := get(crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "status", "properties",
		"index", "properties", "sources", "items", "properties", "skipped", "maxItems")
	if num(skipped) != fmt.Sprint(contract.MaxSkippedReported) {
		t.Errorf("status.index.sources[].skipped maxItems %s, contract %d", num(skipped), contract.MaxSkippedReported)
	}
	// kubectl get rag shows the document count.
	found := false
	for _, c := range get(crd, "spec", "versions", 0, "additionalPrinterColumns").([]any) {
		col := c.(map[string]any)
		found = found || (col["name"] == "Documents" && col["jsonPath"] == ".status.index.documents" && col["priority"] == nil)
	}
	if !found {
		t.Error("no Documents column on .status.index.documents in kubectl get rag")
	}
	mode := get(spec, "retrieval", "properties", "mode")
	if def := fmt.Sprint(get(mode, "default")); def != contract.DefaultRetrievalMode {
		t.Errorf("retrieval.mode: CRD default %s, contract %s", def, contract.DefaultRetrievalMode)
	}
	if enum := fmt.Sprint(get(mode, "enum")); enum != fmt.Sprint(contract.RetrievalModes) {
		t.Errorf("retrieval.mode: CRD enum %s, contract %v", enum, contract.RetrievalModes)
	}
	endpoint := get(spec, "server", "properties", "tracing", "properties", "otlpEndpoint")
	if got := num(get(endpoint, "maxLength")); got != fmt.Sprint(contract.MaxOTLPEndpointLength) {
		t.Errorf("server.tracing.otlpEndpoint: CRD maxLength %s, contract %d", got, contract.MaxOTLPEndpointLength)
	}
}
