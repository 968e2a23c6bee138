package replication

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshot_CarriesZonesAndRefusesAnotherCluster(t *testing.T) {
	a := newFSMAdapter(newKV(), "cluster-a")
	meta := func(id, zone string) *raft.Log {
		return &raft.Log{Type: raft.LogCommand, Index: 1, Data: append([]byte{kindMeta}, `{"id":"`+id+`","zone":"`+zone+`"}`...)}
	}
	a.ApplyBatch([]*raft.Log{meta("n1", "eu-a"), {Type: raft.LogCommand, Index: 2, Data: append([]byte{kindCommand}, `{"req":"r","key":"k","val":"v"}`...)}})
	s, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := s.Persist(&sink); err != nil {
		t.Fatal(err)
	}

	other := newFSMAdapter(newKV(), "cluster-b")
	if err := other.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("restore into another cluster: %v", err)
	}
	if other.fsm.(*kvFSM).get("k") != "" {
		t.Fatal("refused snapshot reached the FSM")
	}
	same := newFSMAdapter(newKV(), "cluster-a")
	if err := same.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if same.zoneMap()["n1"] != "eu-a" || same.fsm.(*kvFSM).get("k") != "v" || same.appliedForTest() != 2 {
		t.Fatalf("restored zones %v, applied %d", same.zoneMap(), same.appliedForTest())
	}
}

func (a *fsmAdapter) appliedForTest() uint64 { i, _ := a.appliedIndex(); return i }

func TestCheckPlacement(t *testing.T) {
	v := func(id, zone string) Server { return Server{ID: id, Zone: zone, Voter: true} }
	for name, tc := range map[string]struct {
		servers []Server
		ok      bool
	}{
		"three zones":               {[]Server{v("a", "z1"), v("b", "z2"), v("c", "z3")}, true},
		"two of three in one zone":  {[]Server{v("a", "z1"), v("b", "z1"), v("c", "z3")}, false},
		"five as 2-2-1":             {[]Server{v("a", "z1"), v("b", "z1"), v("c", "z2"), v("d", "z2"), v("e", "z3")}, true},
		"five as 3-1-1":             {[]Server{v("a", "z1"), v("b", "z1"), v("c", "z1"), v("d", "z2"), v("e", "z3")}, false},
		"voter without zone":        {[]Server{v("a", ""), v("b", "z2"), v("c", "z3")}, false},
		"non-voters do not count":   {[]Server{v("a", "z1"), v("b", "z2"), v("c", "z3"), {ID: "d", Zone: "z1"}, {ID: "e", Zone: "z1"}}, true},
		"single node is its quorum": {[]Server{v("a", "z1")}, true},
	} {
		t.Run(name, func(t *testing.T) {
			if err := CheckPlacement(tc.servers); (err == nil) != tc.ok {
				t.Fatalf("CheckPlacement: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCluster_ZonesOnEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c, err := NewCluster(ctx, ClusterConfig{Zones: zones5, FSM: func(int) FSM { return newKV() }})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l, _ := c.WaitLeader(ctx)
		if err := c.Node(l).LinearizableBarrier(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := c.Node(i).WaitApplied(ctx, c.Node(l).AppliedIndex()); err != nil {
				t.Fatal(err)
			}
			z := c.Node(i).Zones()
			for j := range 5 {
				if z[c.ID(j)] != zones5[j] {
					t.Fatalf("node %d sees %s in %q, want %q", i, c.ID(j), z[c.ID(j)], zones5[j])
				}
			}
		}
		servers, err := c.Node(l).Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPlacement(servers); err != nil {
			t.Fatal(err)
		}
	})
}
