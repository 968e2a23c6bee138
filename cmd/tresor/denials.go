package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/gateway/admin"
)

// denials records the connections the admin and cluster listeners refuse
// (auth.FilterListener) in the login audit without holding up their
// Accept loops: an audit append waits for the disk, and a flood of refused
// connections must not delay the allowed ones. Records queue in a bounded
// channel that one goroutine drains; what does not fit is counted, and the
// count goes into the reason of the next record written, so the audit
// says that denials were dropped and how many.
type denials struct {
	log     *slog.Logger
	queue   chan audit.Record
	dropped atomic.Int64
}

// denialQueue bounds the records waiting for the audit.
const denialQueue = 1024

func newDenials(log *slog.Logger) *denials {
	return &denials{log: log, queue: make(chan audit.Record, denialQueue)}
}

// refused queues the record of a refused connection; it never blocks.
func (d *denials) refused(listener string, ip netip.Addr) {
	// Aggregate: a refused connection proves nothing, and a flood of them
	// must not fill the audit's disk (audit.AggregationConfig).
	rec := audit.Record{Kind: audit.AllowlistDeny, Reason: listener + " allowlist", Operation: listener + "-connect", Aggregate: true}
	if ip.IsValid() {
		rec.SourceAddr = ip.String()
	}
	select {
	case d.queue <- rec:
	default:
		d.dropped.Add(1)
	}
}

// run appends the queued records to a until ctx ends. Records queued
// before run starts (the cluster listener opens before the audit log) wait
// for it.
func (d *denials) run(ctx context.Context, a admin.Auditor) {
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-d.queue:
			if n := d.dropped.Swap(0); n > 0 {
				rec.Reason = fmt.Sprintf("%s; %d more refusals dropped (queue full)", rec.Reason, n)
			}
			if err := a.Append(ctx, rec); err != nil && ctx.Err() == nil {
				d.log.Error("audit record of a refused connection not written", "listener", rec.Operation, "error", err)
			}
		}
	}
}
