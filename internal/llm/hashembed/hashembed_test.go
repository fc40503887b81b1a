package hashembed

import (
	"math"
	"testing"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestVector(t *testing.T) {
	q := Vector("What were the main risk factors?", 256, "m")
	related := Vector("Risk factors include interest rate changes.", 256, "m")
	unrelated := Vector("The cafeteria serves lunch at noon.", 256, "m")
	if got := math.Sqrt(dot(q, q)); math.Abs(got-1) > 1e-5 {
		t.Fatalf("norm = %v, want 1", got)
	}
	if dot(q, related) <= dot(q, unrelated) {
		t.Fatalf("related score %v <= unrelated %v", dot(q, related), dot(q, unrelated))
	}
	if e := Vector("?!", 8, "m"); e[0] != 1 {
		t.Fatalf("empty text gives %v, want unit vector", e)
	}
	if dot(Vector("risk", 256, "a"), Vector("risk", 256, "b")) > 0.99 {
		t.Fatal("different seeds give the same vector")
	}
}
