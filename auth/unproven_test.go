package auth

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestUnproven classifies refusals: those that need no secret and spend
// nothing may have their audit records aggregated, a guess at an existing
// key or a refusal after a right signature may not (and names the key's
// owner).
func TestUnproven(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(testSecrets, DefaultConfig(testRegion))
	if err != nil {
		t.Fatal(err)
	}
	anonymous, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bucket/key", nil)
	malformed, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bucket/key", nil)
	malformed.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=garbage")
	for _, tc := range []struct {
		name      string
		r         *http.Request
		unproven  bool
		claimant  bool
		wantError error
	}{
		{"anonymous", anonymous, true, false, ErrAnonymous},
		{"malformed Authorization", malformed, true, false, ErrAuthorizationHeaderMalformed},
		{"unknown access key", sdkSigned(t, signOpts{key: "AKIDNOSUCHKEY"}), true, false, ErrInvalidAccessKeyID},
		{"outside the clock skew", sdkSigned(t, signOpts{at: time.Now().Add(-time.Hour)}), true, false, ErrRequestTimeTooSkewed},
		{"wrong secret", sdkSigned(t, signOpts{secret: "wrong"}), false, true, ErrSignatureDoesNotMatch},
		{"right signature, bad body declaration", sdkSigned(t, signOpts{headers: map[string]string{"X-Amz-Decoded-Content-Length": "-5"}}), false, true, ErrInvalidArgument},
	} {
		_, err := v.Verify(context.Background(), tc.r)
		if !errors.Is(err, tc.wantError) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.wantError)
			continue
		}
		if got := Unproven(err); got != tc.unproven {
			t.Errorf("%s: Unproven = %v, want %v", tc.name, got, tc.unproven)
		}
		if _, ok := ClaimantOf(err); ok != tc.claimant {
			t.Errorf("%s: claimant %v, want %v", tc.name, ok, tc.claimant)
		}
	}
	if Unproven(nil) {
		t.Error("no error is unproven")
	}
}
