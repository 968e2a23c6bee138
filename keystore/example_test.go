package keystore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/tresor-gw/tresor/keystore"
)

// Example shows what `tresor serve` does on an empty data directory and
// what the SigV4 verifier and the envelope then ask the keystore.
func Example() {
	dir, err := os.MkdirTemp("", "tresor-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := keystore.Open(ctx, keystore.DefaultConfig(dir)) // creates <dir>/root.key
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	cred, err := s.Bootstrap(ctx) // serve writes cred to <dir>/credentials
	if err != nil {
		log.Fatal(err)
	}
	ak, err := s.AccessKey(ctx, cred.AccessKeyID) // on every request
	if err != nil {
		log.Fatal(err)
	}
	_, secret, err := s.ActiveKey(ctx, ak.Tenant) // on every object write
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ak.UserName, ak.Role, ak.Secret == cred.SecretAccessKey, len(secret))
	// Output: admin admin true 32
}
