package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// dump returns every key and value in the store.
func dump(t testing.TB, s *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffDumps(a, b map[string][]byte, ignore ...string) []string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if slices.Contains(ignore, k) {
			continue
		}
		if bv, ok := b[k]; !ok || !bytes.Equal(a[k], bv) {
			diffs = append(diffs, fmt.Sprintf("%q: %q vs %q", k, a[k], bv))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !slices.Contains(ignore, k) {
			diffs = append(diffs, fmt.Sprintf("%q only in second", k))
		}
	}
	return diffs
}

// recordingLog records every command it passes to the local log.
type recordingLog struct {
	*LocalLog
	mu   sync.Mutex
	cmds []Command
	res  []Result
}

func (r *recordingLog) Propose(ctx context.Context, c Command) (Result, uint64, error) {
	res, idx, err := r.LocalLog.Propose(ctx, c)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, c)
	r.res = append(r.res, res)
	return res, idx, err
}

// workload drives a store through every op, including rejected ones.
func workload(t *testing.T, s *Store) {
	ctx := context.Background()
	if _, err := s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	tn := mustTenant(t, s, "acme")
	s.CreateTenant(ctx, "acme", nil) // rejected: name taken
	s.SetTenantState(ctx, tn.ID, TenantSuspended)
	s.SetTenantState(ctx, tn.ID, TenantActive)
	old := tn.ActiveKey
	s.RotateKey(ctx, tn.ID)
	s.DisableKey(ctx, tn.ID, old)
	s.DisableKey(ctx, tn.ID, old) // rejected: already disabled
	u := mustUser(t, s, tn.ID, "ann", RoleWriter)
	s.SetUserRole(ctx, u.ID, RoleAdmin)
	ak, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	s.SetAccessKeyState(ctx, ak.ID, AccessKeyDisabled)
	ak2, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	s.DeleteAccessKey(ctx, ak2.ID)
	u2 := mustUser(t, s, tn.ID, "bob", RoleReader)
	s.CreateAccessKey(ctx, u2.ID, noExpiry)
	s.DeleteUser(ctx, u2.ID)
	mustBucket(t, s, tn.ID, "acme-data")
	up, _ := s.PutUpload(ctx, Upload{Tenant: tn.ID, Bucket: "acme-data", Key: "k1", Envelope: "e", BackendUploadID: "b"})
	s.CompleteUpload(ctx, tn.ID, "acme-data", "k1", up.ID, Manifest{ETag: "e1", Data: []byte("m1")})
	up2, _ := s.PutUpload(ctx, Upload{Tenant: tn.ID, Bucket: "acme-data", Key: "k2", Envelope: "e", BackendUploadID: "b"})
	s.AbortUpload(ctx, tn.ID, "acme-data", "k2", up2.ID)
	s.PutUpload(ctx, Upload{Tenant: tn.ID, Bucket: "acme-data", Key: "k3", Envelope: "e", BackendUploadID: "b"})
	s.PutManifest(ctx, tn.ID, "acme-data", "k4", Manifest{ETag: "e4", Data: []byte("m4")})
	s.DeleteManifests(ctx, tn.ID, "acme-data", "k4", nil)
	mustBucket(t, s, tn.ID, "acme-tmp")
	s.DeleteBucket(ctx, tn.ID, "acme-tmp")
	gone := mustTenant(t, s, "gone")
	s.DeleteTenant(ctx, gone.ID)
	// recovery.go
	ob := mustTenant(t, s, "onboarded")
	first, _ := s.CreateFirstAdmin(ctx, ob.ID, "alice", noExpiry)
	s.CreateFirstAdmin(ctx, ob.ID, "mallory", noExpiry)             // rejected: onboarded
	s.RecoverTenant(ctx, ob.ID, first.Recovery.ID, "bob", noExpiry) // rejected: alice's key works
	s.DeleteUser(ctx, first.User.ID)
	s.RecoverTenant(ctx, ob.ID, first.Recovery.ID, "bob", noExpiry)
	s.RotateRecoveryKey(ctx, ob.ID)
}

// TestApply_DeterministicReplay applies the commands one store proposed to
// two fresh stores, one command per batch and all in one batch, and expects
// all three to hold the same bytes and to have returned the same results.
func TestApply_DeterministicReplay(t *testing.T) {
	cfg := testConfig(t)
	var rec *recordingLog
	cfg.NewLog = func(f *FSM) (Log, error) {
		rec = &recordingLog{LocalLog: NewLocalLog(f)}
		return rec, nil
	}
	a := openStore(t, cfg)
	workload(t, a)
	if len(rec.cmds) < 25 {
		t.Fatalf("workload proposed only %d commands", len(rec.cmds))
	}

	replicas := []struct {
		name  string
		apply func(f *FSM) []Result
	}{
		{"one batch per command", func(f *FSM) []Result {
			var rs []Result
			for i, c := range rec.cmds {
				rs = append(rs, f.Apply(uint64(i+1), c)...)
			}
			return rs
		}},
		{"one batch", func(f *FSM) []Result {
			var es []Entry
			for i, c := range rec.cmds {
				es = append(es, Entry{Index: uint64(i + 1), Command: c})
			}
			return f.ApplyBatch(es)
		}},
	}
	want := dump(t, a)
	for _, r := range replicas {
		t.Run(r.name, func(t *testing.T) {
			c := testConfig(t)
			c.RootKey = cfg.RootKey
			b := openStore(t, c)
			results := r.apply(b.FSM())
			for i := range results {
				if !bytes.Equal(mustJSON(results[i]), mustJSON(rec.res[i])) {
					t.Fatalf("command %d (%v): result %+v, proposer saw %+v", i, rec.cmds[i].Op, results[i], rec.res[i])
				}
			}
			if d := diffDumps(want, dump(t, b)); len(d) > 0 {
				t.Fatalf("replica differs:\n%s", bytes.Join(toBytes(d), []byte("\n")))
			}
			// The replica can use what it applied.
			tn, err := b.TenantByName(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.ActiveKey(context.Background(), tn.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func toBytes(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func createTenantCommand(t *testing.T, s *Store, name string) Command {
	t.Helper()
	p, err := s.newTenantPayload(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var req [16]byte
	s.rand.Read(req[:])
	c, err := newCommand(OpCreateTenant, req, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApply_IdempotentByRequestID(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	c := createTenantCommand(t, s, "acme")

	r1, i1, err := s.log.Propose(ctx, c)
	if err != nil || r1.Err() != nil {
		t.Fatal(err, r1.Err())
	}
	before := dump(t, s)
	r2, i2, err := s.log.Propose(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSON(r1), mustJSON(r2)) || i2 != i1+1 {
		t.Fatalf("replay: %+v at %d, first %+v at %d", r2, i2, r1, i1)
	}
	if d := diffDumps(before, dump(t, s), string(keyApplied)); len(d) > 0 {
		t.Fatalf("a replayed command changed the store: %v", d)
	}
	if ts, _ := s.Tenants(ctx); len(ts) != 1 {
		t.Fatalf("%d tenants after a replay", len(ts))
	}

	// Twice in one batch: the second sees the first's dedup record.
	c2 := createTenantCommand(t, s, "beta")
	idx := s.AppliedIndex()
	rs := s.FSM().ApplyBatch([]Entry{{idx + 1, c2}, {idx + 2, c2}})
	if rs[0].Code != CodeOK || !bytes.Equal(mustJSON(rs[0]), mustJSON(rs[1])) {
		t.Fatalf("same batch: %+v", rs)
	}

	// A rejected command is remembered as rejected, even once the reason
	// is gone (the state machine answers what it answered).
	c3 := createTenantCommand(t, s, "Bad Name")
	r3 := s.FSM().Apply(s.AppliedIndex()+1, c3)[0]
	r4 := s.FSM().Apply(s.AppliedIndex()+1, c3)[0]
	if r3.Code != CodeInvalid || r4.Code != CodeInvalid || r3.Message != r4.Message {
		t.Fatalf("rejected replay: %+v / %+v", r3, r4)
	}
}

func TestApply_SkipsIndexesAlreadyApplied(t *testing.T) {
	s, _ := newStore(t)
	c := createTenantCommand(t, s, "acme")
	f := s.FSM()
	r1 := f.Apply(5, c)[0]
	before := dump(t, s)
	other := createTenantCommand(t, s, "other")
	for _, idx := range []uint64{1, 5} {
		r := f.Apply(idx, other)[0]
		if r.Code != CodeState {
			t.Fatalf("unknown command at applied index %d: %+v", idx, r)
		}
		if r := f.Apply(idx, c)[0]; !bytes.Equal(mustJSON(r), mustJSON(r1)) {
			t.Fatalf("known command at applied index %d: %+v", idx, r)
		}
	}
	if d := diffDumps(before, dump(t, s)); len(d) > 0 || f.AppliedIndex() != 5 {
		t.Fatalf("replaying old indexes changed the store: %v", d)
	}
}

func TestApply_RejectedCommandLeavesNothing(t *testing.T) {
	s, _ := newStore(t)
	tp, _ := s.newTenantPayload(DefaultTenantName, nil)
	u := User{ID: ID{1}, Tenant: tp.Tenant, Name: "admin", Role: RoleAdmin}
	rec, _, _ := s.newAccessKey(u, noExpiry)
	rec.ID = "not-an-access-key-id" // the last of three records is bad
	c, _ := newCommand(OpBootstrap, [16]byte{1}, bootstrapPayload{Tenant: tp, User: u, Key: rec})
	before := dump(t, s)
	if r := s.FSM().Apply(1, c)[0]; r.Code != CodeInvalid {
		t.Fatalf("bootstrap with a bad access key: %+v", r)
	}
	after := dump(t, s)
	for k := range after {
		if _, ok := before[k]; !ok && !bytes.HasPrefix([]byte(k), []byte(pfxDedup)) &&
			!bytes.HasPrefix([]byte(k), []byte(pfxDedupQueue)) && k != string(keyApplied) {
			t.Fatalf("rejected command left %q behind", k)
		}
	}
}

func TestApply_MalformedCommandIsRejectedNotPanic(t *testing.T) {
	s, _ := newStore(t)
	r := s.FSM().Apply(1, Command{Op: OpCreateBucket, RequestID: [16]byte{1}, Payload: []byte("{not json")})[0]
	if r.Code != CodeInvalid {
		t.Fatalf("%+v", r)
	}
	// A zero request id is refused before dedup could mix commands up.
	c := createTenantCommand(t, s, "acme")
	c.RequestID = [16]byte{}
	if r := s.FSM().Apply(2, c)[0]; r.Code != CodeInvalid {
		t.Fatalf("zero request id: %+v", r)
	}
}

func TestApply_UnknownOpPanics(t *testing.T) {
	s, _ := newStore(t)
	defer func() {
		if recover() == nil {
			t.Fatal("unknown op did not panic")
		}
		if s.AppliedIndex() != 0 {
			t.Fatal("a panicking batch moved the applied index")
		}
	}()
	s.FSM().Apply(1, Command{Op: 200, Payload: []byte("{}")})
}

func TestApply_DedupWindowIsBounded(t *testing.T) {
	s, _ := newStore(t)
	f := s.FSM()
	c := createTenantCommand(t, s, "acme")
	f.Apply(1, c)
	f.Apply(2+DedupWindow, createTenantCommand(t, s, "beta"))
	var d dedupRecord
	s.db.View(func(txn *badger.Txn) error {
		if ok, _ := read(txn, dedupKey(c.RequestID), &d); ok {
			t.Fatal("dedup record outlived the window")
		}
		return nil
	})
	// Outside the window the command is applied afresh (and rejected,
	// since its tenant now exists).
	if r := f.Apply(3+DedupWindow, c)[0]; r.Code != CodeExists {
		t.Fatalf("%+v", r)
	}
	var n int
	for k := range dump(t, s) {
		if bytes.HasPrefix([]byte(k), []byte(pfxDedupQueue)) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d dedup queue entries, want 2", n)
	}
}

func TestLocalLog_ProposeAfterClose(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.CreateTenant(context.Background(), "acme", nil); err == nil {
		t.Fatal("CreateTenant after Close succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CreateTenant(ctx, "acme", nil); err == nil {
		t.Fatal("CreateTenant with a cancelled context succeeded")
	}
}

func TestResultValueCarriesNoSecret(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "ann", RoleAdmin)
	ak, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	for k, v := range dump(t, s) {
		if bytes.Contains(v, []byte(ak.Secret)) {
			t.Fatalf("secret in clear under %q", k)
		}
	}
	var fromJSON AccessKey
	json.Unmarshal(mustJSON(ak), &fromJSON)
	if fromJSON.Secret != "" {
		t.Fatal("AccessKey's JSON encoding carries the secret")
	}
}
