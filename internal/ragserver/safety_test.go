package ragserver_test

import (
	"strings"
	"testing"
)

// TestAuthSchemeIsCaseInsensitive: the Bearer scheme matches in any case
// (RFC 9110); other schemes and missing credentials stay refused.
func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	ts := start(t, map[string]string{"API_TOKEN": "tok-0123456789"})
	query := func(header string) int {
		req := mustReq(t, "POST", ts.URL+"/retrieve", strings.NewReader(`{"question":"x"}`), "application/json")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		return do(t, req).Status
	}
	for _, h := range []string{"Bearer tok-0123456789", "bearer tok-0123456789", "BEARER tok-0123456789", "bEaReR   tok-0123456789 "} {
		if s := query(h); s != 200 {
			t.Errorf("Authorization %q: status %d, want 200", h, s)
		}
	}
	for _, h := range []string{"", "Basic dG9rOnRvaw==", "Basic tok-0123456789", "tok-0123456789", "Bearer", "Bearer ", "bearer wrong", "Bearertok-0123456789"} {
		if s := query(h); s != 401 {
			t.Errorf("Authorization %q: status %d, want 401", h, s)
		}
	}
}
