package main

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

func TestCheckChallenge(t *testing.T) {
	key, other := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(other)
	now := time.Now()
	fresh := newChallenge(key, now)
	tampered := bytes.Clone(fresh)
	tampered[10] ^= 1
	for _, tc := range []struct {
		name string
		key  []byte
		c    []byte
		at   time.Time
		ok   bool
	}{
		{"fresh", key, fresh, now, true},
		{"within its lifetime", key, fresh, now.Add(challengeTTL - time.Second), true},
		{"expired", key, fresh, now.Add(challengeTTL + 2*time.Second), false},
		{"from the future", key, newChallenge(key, now.Add(5*time.Minute)), now, false},
		{"tampered", key, tampered, now, false},
		{"another cluster's", other, fresh, now, false},
		{"truncated", key, fresh[:39], now, false},
		{"empty", key, nil, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkChallenge(tc.key, tc.c, tc.at); (err == nil) != tc.ok {
				t.Errorf("checkChallenge: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestEnrollProof_BindsEveryField: changing any field of a request or an
// answer changes its MAC, so neither can be altered in transit.
func TestEnrollProof_BindsEveryField(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	base := enrollRequest{ID: "n2", Zone: "z2", RaftAddr: "10.0.0.2:9002", CSR: []byte("csr"), Challenge: []byte("challenge")}
	want := base.proof(key)
	for name, mutate := range map[string]func(*enrollRequest){
		"id":        func(r *enrollRequest) { r.ID = "n3" },
		"zone":      func(r *enrollRequest) { r.Zone = "z3" },
		"raft addr": func(r *enrollRequest) { r.RaftAddr = "10.0.0.3:9002" },
		"csr":       func(r *enrollRequest) { r.CSR = []byte("csR") },
		"challenge": func(r *enrollRequest) { r.Challenge = []byte("challengE") },
		// Length prefixes keep field boundaries: moving a byte from one
		// field to the next is a different request.
		"boundary": func(r *enrollRequest) { r.ID, r.Zone = "n2z", "2" },
	} {
		r := base
		mutate(&r)
		if bytes.Equal(r.proof(key), want) {
			t.Errorf("request proof does not cover %s", name)
		}
	}
	resp := enrollResponse{ClusterID: "c", CACert: []byte("ca"), NodeCert: []byte("cert"), CAKey: []byte("key"), Members: []string{"a:1"}}
	rp := resp.proof(key, want)
	for name, mutate := range map[string]func(*enrollResponse){
		"cluster id": func(r *enrollResponse) { r.ClusterID = "d" },
		"ca":         func(r *enrollResponse) { r.CACert = []byte("cA") },
		"node cert":  func(r *enrollResponse) { r.NodeCert = []byte("cerT") },
		"ca key":     func(r *enrollResponse) { r.CAKey = []byte("keY") },
		"members":    func(r *enrollResponse) { r.Members = []string{"b:1"} },
	} {
		r := resp
		mutate(&r)
		if bytes.Equal(r.proof(key, want), rp) {
			t.Errorf("answer proof does not cover %s", name)
		}
	}
	if bytes.Equal(resp.proof(key, []byte("another request")), rp) {
		t.Error("answer proof is not bound to the request")
	}
}

func TestUsedChallenges_SpendOnce(t *testing.T) {
	var u usedChallenges
	now := time.Now()
	a, b := []byte("challenge a"), []byte("challenge b")
	if !u.spend(a, now) || !u.spend(b, now) {
		t.Fatal("a fresh challenge was refused")
	}
	if u.spend(a, now.Add(time.Second)) {
		t.Error("a challenge was spent twice")
	}
	// Spent challenges are forgotten once they could no longer pass
	// checkChallenge anyway, so the set stays small.
	u.spend([]byte("later"), now.Add(3*challengeTTL))
	if len(u.seen) != 1 {
		t.Errorf("%d challenges remembered, want 1", len(u.seen))
	}
}
