// Package bench drives real tresor processes on loopback to check the
// promise "losing one zone loses no acknowledged write and stops no read"
// (DESIGN.md sections 1 and 5) and to measure what failures cost. The CLI is
// `tresor bench failover` and `tresor bench keystore` (cmd/tresor/bench.go);
// the format's own micro-benchmarks live beside the code they measure
// (gateway/envelope), and bench/scripts holds shell measurements (peak RSS).
//
// # Files
//
//	process.go    Process and Supervisor: `tresor serve` children with
//	              SIGKILL, SIGSTOP, SIGCONT and restart on the same ports
//	cluster.go    Cluster: a backend and one node per zone, status polling
//	              (GET /cluster/v1/status), leader detection, transfer
//	s3client.go   the load's aws-sdk-go-v2 client: no retries, bounded time
//	content.go    Body and Identify: object content derived from (key, version)
//	ledger.go     Ledger and Check: what was acknowledged, what a read may return
//	load.go       Load: writers and readers per zone, final verification
//	timeline.go   Timeline, Unavailable, FailedWindow: measured from the
//	              load's own requests
//	failover.go   Failover and its Report
//	keywrites.go  KeyWrites: keystore writes per second with 64 writers
//	errclass.go   failure classes for the reports
//
// # Topology
//
// Four `tresor serve` processes, all on 127.0.0.1 with free ports: a
// backend (single node, fs backend, its own data directory) and three
// cluster nodes, one per zone, sharing one root key (--root-key) and using
// the backend as their S3 backend (--backend s3+http://.../tresor-backend,
// with the backend's bootstrap credentials in AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY). The fs backend locks its directory, so the nodes
// cannot share one directly; a tresor in front of it keeps everything real
// and adds no dependency. The first node bootstraps the cluster, the others
// --join it through its admin address and promote themselves once caught
// up (one voter per zone). Every child runs in its own process group, so a
// terminal's Ctrl-C reaches only the drill, which kills them; Pdeathsig
// kills them if the drill itself dies; Supervisor.Close kills them on every
// return path, panics included (a deferred call).
//
// # What the load writes and how reads are judged
//
// The content of version v of key k is a header naming both and bytes from
// ChaCha8 seeded with SHA-256(k, v), 1 to 80 KiB (past one 64 KiB DARE
// package), so every read is checked byte for byte and a read of another
// write's bytes is told from garbage. Every key has one writer, which writes
// versions 1, 2, ... in order through one zone's gateway and waits for each
// answer. Writes are of two kinds: a single PutObject ("put", no Raft write:
// the gateway reads its local keystore replica and writes the backend) and
// a one-part multipart upload ("multipart": CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload through one gateway, two Raft writes:
// the upload session and the manifest). A write answered with success is
// acknowledged. A failed write may still have taken effect, so its key is
// retired (never written again) and may hold either the last acknowledged
// version or that unknown one; a multipart upload that failed before its
// completion was sent changed nothing and its key stays in use.
//
// A read during the load must return a version between the last one
// acknowledged before it started and the last one sent before it ended:
// older is a stale read (stale_reads), anything not byte-identical to the
// version it claims, or a version never sent, is a corrupt read. After the
// load, the final pass reads every key through every zone (retrying failed
// requests up to 5 times); a key whose acknowledged version (or the later
// unknown one) does not come back byte for byte from every zone, or from no
// zone at all, is a lost write.
//
// # The failover drill
//
// On the load's timeline of duration D: at 0.20 D the leader's process is
// killed with SIGKILL; at 0.45 D it is restarted on its data directory; at
// 0.60 D leadership is transferred (`tresor cluster transfer-leader`); at
// 0.75 D a follower (or the leader, --pause-leader) is stopped with SIGSTOP
// for 0.1 D (1 to 5 s) and continued; at D the load stops and the final pass
// runs. The drill fails (exit status 1) if a write was lost, a read
// returned wrong bytes or a stale version, or a step could not run.
//
// Measures, all from the load's own requests (Op: kind, zone, start, end,
// outcome), not from the servers' logs:
//
//   - write_unavailable_seconds: after the SIGKILL, the longest gap
//     between two successful multipart writes through surviving zones
//     (gateways not killed or paused while the request ran), counted from
//     the kill at the earliest, over the gaps within max(D/10, 5 s);
//     put_unavailable_seconds is the same for single PUTs, which need no
//     Raft write.
//   - leader_elected_seconds: from the SIGKILL until a surviving node's
//     cluster status names another leader, polled every 100 ms.
//   - read_unavailable_seconds: the longest time in a surviving zone from
//     the start of a failed read to the next successful read there.
//   - transfer_write_unavailable_seconds and
//     pause_write_unavailable_seconds: the longest gap between successful
//     multipart writes within 2 s after the transfer began, and around the
//     SIGSTOP; baseline_write_gap_seconds is the same measure in steady
//     state before the first fault, for comparison.
//   - failed_reads and failed_writes count requests that failed or timed
//     out (2 s), _surviving_zones only those through unaffected gateways;
//     failures_by_class breaks them down by S3 error code or connection
//     outcome.
//
// # Key writes
//
// KeyWrites counts keystore writes per second: 64 writers (by default)
// spread over every zone's gateway each create a bucket and delete it
// again, each a single keystore command committed through Raft (see
// KeyWriteDefinition); at half time it transfers leadership and reports
// the longest gap between successful key writes in the 2 s after.
package bench
