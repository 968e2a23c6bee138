package gateway

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestPreconditions(t *testing.T) {
	mod := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	before := mod.Add(-time.Hour).Format(http.TimeFormat)
	at := mod.Format(http.TimeFormat)
	after := mod.Add(time.Hour).Format(http.TimeFormat)
	const etag = `"abc"`
	tests := []struct {
		name   string
		header map[string]string
		want   int // 0: go ahead
	}{
		{"none", nil, 0},
		{"if-match hit", map[string]string{"If-Match": `"abc"`}, 0},
		{"if-match unquoted", map[string]string{"If-Match": `abc`}, 0},
		{"if-match list", map[string]string{"If-Match": `"x", "abc"`}, 0},
		{"if-match star", map[string]string{"If-Match": `*`}, 0},
		{"if-match miss", map[string]string{"If-Match": `"x"`}, 412},
		{"if-none-match hit", map[string]string{"If-None-Match": `"abc"`}, 304},
		{"if-none-match star", map[string]string{"If-None-Match": `*`}, 304},
		{"if-none-match miss", map[string]string{"If-None-Match": `"x"`}, 0},
		{"if-modified-since earlier", map[string]string{"If-Modified-Since": before}, 0},
		{"if-modified-since same", map[string]string{"If-Modified-Since": at}, 304},
		{"if-modified-since later", map[string]string{"If-Modified-Since": after}, 304},
		{"if-unmodified-since earlier", map[string]string{"If-Unmodified-Since": before}, 412},
		{"if-unmodified-since same", map[string]string{"If-Unmodified-Since": at}, 0},
		{"if-match wins over if-unmodified-since", map[string]string{"If-Match": etag, "If-Unmodified-Since": before}, 0},
		{"if-none-match wins over if-modified-since", map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": after}, 0},
		{"if-match miss before if-none-match", map[string]string{"If-Match": `"x"`, "If-None-Match": `"x"`}, 412},
		{"unparsable date ignored", map[string]string{"If-Modified-Since": "yesterday"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			err := preconditions(h, etag, mod.Add(300*time.Millisecond))
			got := 0
			var api *APIError
			if errors.As(err, &api) {
				got = api.Status
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}
