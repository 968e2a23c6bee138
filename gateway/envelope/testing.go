package envelope

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
)

// ErrNoKey is MemoryKeyring's answer for a key version it does not hold or
// has disabled.
var ErrNoKey = errors.New("envelope: no such tenant key version")

// MemoryKeyring is an in-memory Keyring for tests of this package and of the
// gateway, so that they need not build a keystore. It is safe for
// concurrent use.
type MemoryKeyring struct {
	mu     sync.Mutex
	active map[[16]byte][16]byte
	keys   map[[32]byte][]byte // tenant || id -> secret
}

// NewMemoryKeyring returns an empty keyring; a tenant's first ActiveKey call
// creates its first key version.
func NewMemoryKeyring() *MemoryKeyring {
	return &MemoryKeyring{active: map[[16]byte][16]byte{}, keys: map[[32]byte][]byte{}}
}

func versionKey(tenant, id [16]byte) (k [32]byte) {
	copy(k[:], tenant[:])
	copy(k[16:], id[:])
	return k
}

// Add adds key version id of tenant with secret and makes it the active one.
func (m *MemoryKeyring) Add(tenant, id [16]byte, secret []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[versionKey(tenant, id)] = append([]byte(nil), secret...)
	m.active[tenant] = id
}

// Rotate adds a random key version to tenant, makes it active and returns
// its id; older versions keep decrypting.
func (m *MemoryKeyring) Rotate(tenant [16]byte) [16]byte {
	var id [16]byte
	secret := make([]byte, keySize)
	rand.Read(id[:])
	rand.Read(secret)
	m.Add(tenant, id, secret)
	return id
}

// Disable removes key version id of tenant, as crypto-shredding would.
func (m *MemoryKeyring) Disable(tenant, id [16]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, versionKey(tenant, id))
}

// ActiveKey implements Keyring.
func (m *MemoryKeyring) ActiveKey(ctx context.Context, tenant [16]byte) ([16]byte, []byte, error) {
	m.mu.Lock()
	id, ok := m.active[tenant]
	m.mu.Unlock()
	if !ok {
		id = m.Rotate(tenant)
	}
	secret, err := m.Key(ctx, tenant, id)
	return id, secret, err
}

// Key implements Keyring.
func (m *MemoryKeyring) Key(_ context.Context, tenant, id [16]byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.keys[versionKey(tenant, id)]
	if !ok {
		return nil, ErrNoKey
	}
	return s, nil
}
