package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TenantState says whether a tenant may use the gateway.
type TenantState string

// Tenant states. A suspended tenant keeps its data but its access keys and
// tenant keys are refused (ErrDisabled) until it is active again. A deleted
// tenant is a tombstone: its id and name are never used again.
const (
	TenantActive    TenantState = "active"
	TenantSuspended TenantState = "suspended"
	TenantDeleted   TenantState = "deleted"
)

// Tenant is a customer of the gateway: it owns buckets, users and keys.
type Tenant struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
	// State is active, suspended or (only in tombstones) deleted.
	State TenantState `json:"state"`
	// Jurisdictions lists where the tenant's data may live (for example
	// "EU", "DE"); buckets and backups outside them will be refused
	// (DESIGN.md section 7).
	Jurisdictions []string  `json:"jurisdictions,omitempty"`
	Created       time.Time `json:"created"`
	// ActiveKey is the key version that takes new writes.
	ActiveKey ID `json:"active_key"`
	// Onboarded is set once the tenant's first admin exists (Bootstrap,
	// CreateFirstAdmin, RecoverTenant): from then on only the tenant, its
	// admins or its recovery key, creates admins (recovery.go).
	Onboarded bool `json:"onboarded,omitempty"`
}

type createTenantPayload struct {
	Tenant        ID        `json:"tenant"`
	Name          string    `json:"name"`
	Jurisdictions []string  `json:"jurisdictions,omitempty"`
	Created       time.Time `json:"created"`
	// Key and Sealed are the first key version and its sealed secret.
	Key    ID     `json:"key"`
	Sealed []byte `json:"sealed"`
}

type setTenantStatePayload struct {
	Tenant ID          `json:"tenant"`
	State  TenantState `json:"state"`
}

type deleteTenantPayload struct {
	Tenant ID `json:"tenant"`
}

// CreateTenant creates a tenant named name with its first key version.
// Names are 1 to 63 characters of a-z, 0-9 and '-', starting with a letter
// or digit; a name is never given out twice, even after its tenant is
// deleted (ErrExists).
func (s *Store) CreateTenant(ctx context.Context, name string, jurisdictions []string) (Tenant, error) {
	p, err := s.newTenantPayload(name, jurisdictions)
	if err != nil {
		return Tenant{}, err
	}
	var t Tenant
	err = s.propose(ctx, OpCreateTenant, p, &t)
	return t, err
}

func (s *Store) newTenantPayload(name string, jurisdictions []string) (createTenantPayload, error) {
	id, err := randomID(s.rand)
	if err != nil {
		return createTenantPayload{}, err
	}
	keyID, sealed, err := s.newTenantKey(id)
	if err != nil {
		return createTenantPayload{}, err
	}
	return createTenantPayload{
		Tenant: id, Name: name, Jurisdictions: jurisdictions,
		Created: s.now().UTC(), Key: keyID, Sealed: sealed,
	}, nil
}

// Tenant returns the tenant with id. Deleted tenants are ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id ID) (Tenant, error) {
	var t Tenant
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		t, err = readTenant(txn, id)
		return err
	})
	return t, err
}

// TenantByName returns the tenant named name. The name of a deleted tenant
// resolves to nothing (ErrNotFound).
func (s *Store) TenantByName(ctx context.Context, name string) (Tenant, error) {
	var t Tenant
	err := s.view(ctx, func(txn *badger.Txn) error {
		var id ID
		item, err := txn.Get(tenantNameKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: tenant %q", ErrNotFound, name)
		}
		if err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		if err := item.Value(func(v []byte) error { copy(id[:], v); return nil }); err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		t, err = readTenant(txn, id)
		return err
	})
	return t, err
}

// Tenants lists the tenants that are not deleted, in id order.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(txn, []byte(pfxTenant), func(_, v []byte) (bool, error) {
			var t Tenant
			if err := jsonDecode(v, &t); err != nil {
				return false, err
			}
			if t.State != TenantDeleted {
				ts = append(ts, t)
			}
			return true, nil
		})
	})
	return ts, err
}

// SetTenantState suspends (TenantSuspended) or resumes (TenantActive) a
// tenant.
func (s *Store) SetTenantState(ctx context.Context, id ID, state TenantState) error {
	return s.propose(ctx, OpSetTenantState, setTenantStatePayload{Tenant: id, State: state}, nil)
}

// DeleteTenant deletes a tenant that owns no buckets (else ErrNotEmpty). Its
// record stays as a tombstone so neither its id nor its name come back; its
// access keys and key versions stop working at once.
//
// TODO(shred): schedule the destruction of its key versions here once the
// signed shred ledger exists (DESIGN.md section 4).
func (s *Store) DeleteTenant(ctx context.Context, id ID) error {
	return s.propose(ctx, OpDeleteTenant, deleteTenantPayload{Tenant: id}, nil)
}

func readTenant(txn *badger.Txn, id ID) (Tenant, error) {
	var t Tenant
	ok, err := read(txn, tenantKey(id), &t)
	if err != nil {
		return Tenant{}, err
	}
	if !ok || t.State == TenantDeleted {
		return Tenant{}, fmt.Errorf("%w: tenant %s", ErrNotFound, id)
	}
	return t, nil
}

func applyCreateTenant(a *applyCtx, p createTenantPayload) (any, error) {
	return createTenant(a, p)
}

func createTenant(a *applyCtx, p createTenantPayload) (Tenant, error) {
	if err := validTenantName(p.Name); err != nil {
		return Tenant{}, err
	}
	for _, j := range p.Jurisdictions {
		if j == "" || len(j) > 32 {
			return Tenant{}, reject(CodeInvalid, "jurisdiction %q must be 1 to 32 characters", j)
		}
	}
	if p.Tenant.IsZero() || p.Key.IsZero() {
		return Tenant{}, reject(CodeInvalid, "zero tenant or key id")
	}
	if a.exists(tenantKey(p.Tenant)) {
		return Tenant{}, reject(CodeExists, "tenant id %s is taken", p.Tenant)
	}
	if a.exists(tenantNameKey(p.Name)) {
		return Tenant{}, reject(CodeExists, "tenant name %q is taken or retired", p.Name)
	}
	if err := checkNewKey(a, p.Key, p.Sealed); err != nil {
		return Tenant{}, err
	}
	t := Tenant{
		ID: p.Tenant, Name: p.Name, State: TenantActive, Jurisdictions: p.Jurisdictions,
		Created: p.Created, ActiveKey: p.Key,
	}
	a.put(tenantKey(t.ID), t)
	a.putRaw(tenantNameKey(t.Name), t.ID[:])
	putKeyVersion(a, keyRecord{
		KeyVersion: KeyVersion{Tenant: t.ID, ID: p.Key, State: KeyActive, Created: p.Created, Changed: p.Created},
		Sealed:     p.Sealed,
	})
	return t, nil
}

func applySetTenantState(a *applyCtx, p setTenantStatePayload) (any, error) {
	if p.State != TenantActive && p.State != TenantSuspended {
		return nil, reject(CodeInvalid, "tenant state %q: want %q or %q", p.State, TenantActive, TenantSuspended)
	}
	t, err := liveTenant(a, p.Tenant)
	if err != nil {
		return nil, err
	}
	t.State = p.State
	a.put(tenantKey(t.ID), t)
	a.changed = append(a.changed, t.ID)
	return t, nil
}

func applyDeleteTenant(a *applyCtx, p deleteTenantPayload) (any, error) {
	t, err := liveTenant(a, p.Tenant)
	if err != nil {
		return nil, err
	}
	if a.anyWithPrefix(key(pfxTenantBucket, t.ID[:])) {
		return nil, reject(CodeNotEmpty, "tenant %s still owns buckets", t.ID)
	}
	t.State = TenantDeleted
	a.put(tenantKey(t.ID), t)
	a.changed = append(a.changed, t.ID)
	return nil, nil
}

// liveTenant reads a tenant that exists and is not deleted.
func liveTenant(a *applyCtx, id ID) (Tenant, error) {
	var t Tenant
	if !a.get(tenantKey(id), &t) || t.State == TenantDeleted {
		return Tenant{}, reject(CodeNotFound, "tenant %s", id)
	}
	return t, nil
}

func validTenantName(name string) error {
	if len(name) < 1 || len(name) > 63 {
		return reject(CodeInvalid, "tenant name %q must be 1 to 63 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return reject(CodeInvalid, "tenant name %q: only a-z, 0-9 and '-' (not first) are allowed", name)
		}
	}
	return nil
}
