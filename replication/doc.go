// Package replication will hold tresor's Raft node: hashicorp/raft over a
// TLS 1.3 transport with client certificates, a raft-boltdb log store,
// membership with zone labels, and ciphertext mirroring of objects to a
// second backend (DESIGN.md section 5). The keystore runs its state machine
// on top of it. Nothing is implemented here yet: today the keystore applies
// its commands through a single-node log.
package replication
