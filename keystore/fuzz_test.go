package keystore

import (
	"context"
	"testing"
)

// FuzzApply feeds arbitrary payloads to every known op. Apply may reject
// them but must never panic: panics are reserved for a broken store, and a
// bad command from a buggy proposer must not take every replica down.
func FuzzApply(f *testing.F) {
	s, _ := newStore(f)
	ctx := context.Background()
	tn := mustTenant(f, s, "acme")
	u := mustUser(f, s, tn.ID, "ann", RoleAdmin)
	mustBucket(f, s, tn.ID, "acme-data")
	s.CreateAccessKey(ctx, u.ID, noExpiry)
	seeds := map[Op]any{
		OpCreateBucket:   createBucketPayload{Bucket: Bucket{Name: "x-y-z", Tenant: tn.ID}},
		OpDeleteUser:     deleteUserPayload{User: u.ID},
		OpPutUpload:      putUploadPayload{Upload: Upload{ID: "u1", Tenant: tn.ID, Bucket: "acme-data", Key: "k", Envelope: "e", BackendUploadID: "b"}},
		OpCompleteUpload: completeUploadPayload{Tenant: tn.ID, Bucket: "acme-data", Key: "k", ID: "u1", Manifest: Manifest{ETag: "e", Data: []byte{1}}},
		OpSetKeyState:    setKeyStatePayload{Tenant: tn.ID, Key: tn.ActiveKey, State: KeyDisabled},
		OpDeleteTenant:   deleteTenantPayload{Tenant: tn.ID},
		OpBootstrap:      bootstrapPayload{},
	}
	for op, p := range seeds {
		f.Add(uint8(op), mustJSON(p))
	}
	f.Add(uint8(OpCreateTenant), []byte(`{"tenant":"00","name":"a"}`))
	f.Add(uint8(OpRotateKey), []byte(`null`))
	var req [16]byte
	f.Fuzz(func(t *testing.T, op uint8, payload []byte) {
		if _, ok := handlers[Op(op)]; !ok {
			return
		}
		req[0]++
		if req[0] == 0 {
			req[1]++
		}
		fsm := s.FSM()
		r := fsm.Apply(fsm.AppliedIndex()+1, Command{Op: Op(op), RequestID: req, Payload: payload})
		if r[0].Code != CodeOK {
			_ = r[0].Err()
		}
	})
}
