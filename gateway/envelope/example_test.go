package envelope_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tresor-gw/tresor/gateway/envelope"
)

// Example shows a PUT and a ranged GET as the gateway does them; the bytes
// slice stands in for the backend.
func Example() {
	ctx := context.Background()
	kr := envelope.NewMemoryKeyring() // the keystore in the gateway
	b := envelope.Binding{Tenant: [16]byte{1}, Bucket: "photos", Key: "cat.txt"}
	body := "the quick brown fox"

	// PUT: a new envelope, the sealed metadata, and the ciphertext stream
	// whose exact length goes to the backend as Content-Length.
	env, _ := envelope.New(ctx, kr, b, int64(len(body)))
	meta, _ := env.SealMetadata(map[string]string{"content-type": "text/plain"})
	stored, _ := io.ReadAll(env.EncryptReader(strings.NewReader(body)))
	value := env.Marshal()
	fmt.Println(len(stored) == int(envelope.CiphertextSize(int64(len(body)))), len(value) == envelope.EncodedSize)

	// GET with Range: open the envelope from the backend metadata, plan one
	// backend range request, decrypt and trim.
	env, err := envelope.Open(ctx, kr, b, value)
	if err != nil {
		panic(err)
	}
	m, _ := env.OpenMetadata(meta)
	layout, _ := env.SingleLayout()
	start, end, _ := envelope.ParseRange("bytes=4-8", layout.Size())
	plan := layout.Plan(start, end)
	r, _ := env.DecryptReader(bytes.NewReader(stored[plan.CipherStart:plan.CipherEnd+1]), plan)
	got, _ := io.ReadAll(r)
	fmt.Printf("%s %q\n", m["content-type"], got)
	// Output:
	// true true
	// text/plain "quick"
}
