// Package audit is tresor's tamper-evident login audit (DESIGN.md section
// 6): every authentication result, allowlist denial, rate-limit refusal and
// admin action is appended to a per-node log whose records are leaves of an
// RFC 6962 Merkle tree; signed checkpoints (tree size and root) are kept
// beside the log and shipped off the node; Verify checks a log or an export
// offline with nothing but public keys; Review summarises a period and
// flags anomalies; Prune enforces a retention period. FORMAT.md gives the
// bytes.
//
// # Using it
//
//	log, err := audit.Open(ctx, audit.Config{...})  // DefaultConfig(dir, node)
//	err = log.Append(ctx, audit.Record{Kind: audit.AuthFailure, ...})
//	n, err := log.Prune(ctx, time.Now().Add(-retention))
//	err = log.Close()
//
// Append returns once the record is on disk: records are written by one
// goroutine in batches with one fsync per batch (group commit), so the cost
// of an fsync is shared by every request in flight. The queue is bounded
// (Config.QueueSize); when it is full Append blocks until there is room or
// its context ends. Append never drops a record silently: an error means the
// record is not known to be durable, and the caller must fail its request
// closed (the gateway answers 503). After a write error (a full disk) the
// log refuses every record at once (ErrUnavailable) while it cannot write:
// a log with a hole in it is worse than a refused request. It recovers by
// itself (recovery.go): it rolls its files back to the last durable write
// (cutting off a record or checkpoint the failed write left half written,
// removing a segment it began), reads the active segment back to check it
// holds exactly the records acknowledged, and takes records again once
// 1 MiB can be written, retrying with backoff. Ready is the readiness
// check that says why it refuses; Collectors has the metrics
// (tresor_audit_writable).
//
// # Refusals that cost nothing
//
// A request without a signature, with a malformed one, with an unknown
// access key, or refused by the limiter or a listener's allowlist costs its
// sender nothing, and each used to add a record (about 205 bytes): a flood
// of them could fill the disk. Such records are marked Record.Aggregate:
// per minute, the first few from each address (and a bounded number in
// all) are written in full, the others counted, and each count is written
// as one Aggregated record (kind 6) when the minute ends, so they add at
// most AggregationConfig.MaxFull + MaxGroups + 3 records a minute. A
// review counts each refusal as if it had its own record. The request is
// refused either way.
//
// # Personal data
//
// Access key id, user, source address and bucket identify people. They are
// sealed together with AES-256-GCM (random 96-bit nonce) under an audit key
// derived with HKDF-SHA256 from the tenant key version active when the
// record was written (TenantKeys; keystore.Store satisfies it), with the
// clear fields that never change (tenant, key version, time, kind, request
// id) as additional data. Random nonces bound one key version to 2^32
// records (NIST SP 800-38D); tenant key rotation keeps far below that.
//
// The tenant id stays in clear: it is a random 128-bit id, names no person,
// is needed to find the key without trying every tenant's, and lets an
// operator count events per tenant. Kind, reason, operation, request id and
// node id are in clear too; callers must not put personal data in Reason
// or Operation.
//
// Trade-off of deriving from the tenant key: crypto-shredding a tenant
// (destroying its key versions, keystore) also makes its audit fields
// unreadable, which is what erasure asks for; the log still verifies
// (leaves hash the sealed records) and counts per kind stay, but a later
// investigation cannot learn who or from where. Records without a tenant
// (an unknown access key, an operator action, a denial before
// authentication) and records whose tenant key cannot be fetched (the
// record is never lost to a key problem) are sealed under the node's system
// key (Config.SystemKey or system.key, 0600); those outlive a tenant's
// shredding until retention removes them.
//
// Each sealed field also gets a token: HMAC-SHA256 under a second key
// derived from the same secret, cut to 16 bytes. A review without keys (an
// operator, who sees no tenant data) groups by tokens: it can count
// failures per opaque access key and address, and spot a user's first
// login from an address, but cannot reverse a token, not even by trying
// every IPv4 address. Tokens are stable per tenant key version: after a
// rotation a keyless review sees every address once more as new.
//
// # Checkpoints and replication
//
// A checkpoint (log id, node id, tree size, root, time) is signed after
// Config.CheckpointEvery records or Config.CheckpointInterval, with both
// Ed25519 and ML-DSA-65 (FIPS 204, hedged, context "tresor audit
// checkpoint"); both must verify. The signing seeds are generated on first
// start in signing.key (0600, with the random log id); pubkeys.json holds
// the public keys: keep a copy away from the node.
//
// Someone with the node's disk (and so its signing key) could rewrite the
// log and re-sign it. So checkpoints are shipped to a CheckpointStore
// (EncodedCheckpoints over the replicated keystore, ops 30 and 31), which
// keeps what it accepted and refuses sizes that go back and a second
// checkpoint for one size. Open checks the local files against them and
// refuses a log that does not match (ErrTampered); Verify reports such a
// log as Rewritten. What stays open: the records after the last shipped
// checkpoint (at most ShipInterval plus CheckpointInterval of them) can
// still be rewritten by whoever holds the node's disk, and a node whose
// key is stolen can sign new, false records; a wiped directory starts a new
// log id, while the old one's checkpoints stay in the store (list the log
// ids a node had when reviewing).
//
// # Verification
//
// Verify reads a log directory or an export in one pass, keeping only the
// Merkle frontier (O(log n) hashes). It reports, with the record position:
// a record whose frame checksum fails or that does not parse (Modified, at
// that record); a sequence number out of place (Deleted when it never
// shows up, Reordered when it is elsewhere; the first such anomaly only);
// a log ending inside a record or before a checkpoint's size (Truncated); a
// checkpoint whose Ed25519 or ML-DSA-65 signature fails (BadSignature, at
// its size); checkpoints going back or two roots for one size
// (Inconsistent); and a root that does not match (Modified for the node's
// own checkpoints, Rewritten for replicated ones). A root mismatch pins
// the change only to the positions since the last matching root, so it is
// reported at the start of that range, and only when no record-level
// problem already explains it.
//
// # Retention
//
// Prune removes whole segments whose newest record is older than the cut
// (segments roll daily and by size) and keeps in their place the frontier
// of the removed records (file base: their count and at most 64 subtree
// roots); every checkpoint at or above that count still verifies.
// Checkpoints below it are dropped locally and, through CheckpointPruner,
// in the replicated store (which keeps each log's latest).
//
// # Reading a running node's log
//
// Verify, Export, Entries and Review only read: segments are opened
// read-only and a record being written at the end is skipped (Live). They
// can run on a live node's directory; a Prune running at the same time can
// make a read see records vanish (run again). Tenant keys live in the
// keystore, which the serving process holds, so the CLI reviews without
// them; a review with keys goes through the running gateway (Review with
// Keys set).
package audit
