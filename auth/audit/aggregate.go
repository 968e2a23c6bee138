package audit

import (
	"fmt"
	"sync"
	"time"
)

// AggregationConfig bounds what refusals that cost their sender nothing
// (Record.Aggregate) add to the log. Per Interval, the first PerAddr such
// records from one source address are written in full, MaxFull in all;
// the others are counted, per (address, tenant, kind, reason), and each
// count is written as one Aggregated record when the interval ends. At
// most MaxGroups counts are kept per interval; records that would start
// another are counted per kind without their address.
//
// So such records add at most MaxFull + MaxGroups + 3 records to the log
// per Interval, however many requests and addresses: with the defaults
// 60 + 60 + 3 = 123 a minute, about 25 KB (such records take about 200
// bytes), some 35 MB a day under a constant flood from many addresses,
// where every one of those requests used to add its own record (10,000
// anonymous requests added 2.0 MB; now 4.6 KB from one address, 25 KB
// from 10,000: gateway TestGateway_UnauthenticatedFloodBoundsAuditBytes).
// A review still counts every refused request, by address while fewer
// than MaxGroups (address, reason) pairs are counted in an interval.
type AggregationConfig struct {
	Interval  time.Duration
	PerAddr   int
	MaxFull   int
	MaxGroups int
}

// DefaultAggregationConfig writes 5 records in full per address and 60 in
// all per minute, and at most 60 counts.
func DefaultAggregationConfig() AggregationConfig {
	return AggregationConfig{Interval: time.Minute, PerAddr: 5, MaxFull: 60, MaxGroups: 60}
}

func (c AggregationConfig) validate() error {
	if c.Interval < 0 || c.PerAddr < 0 || c.MaxFull < 0 || c.MaxGroups < 0 {
		return fmt.Errorf("%w: config: Aggregation values must not be negative", ErrInvalid)
	}
	return nil
}

// withDefaults fills in the zero fields.
func (c AggregationConfig) withDefaults() AggregationConfig {
	d := DefaultAggregationConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.PerAddr == 0 {
		c.PerAddr = d.PerAddr
	}
	if c.MaxFull == 0 {
		c.MaxFull = d.MaxFull
	}
	if c.MaxGroups == 0 {
		c.MaxGroups = d.MaxGroups
	}
	return c
}

// otherAddresses is the reason of the counts of records from addresses
// past MaxGroups.
const otherAddresses = "from addresses not counted one by one"

// aggregator decides which Aggregate records are written in full and
// counts the others.
type aggregator struct {
	cfg AggregationConfig

	mu      sync.Mutex
	end     time.Time // end of the current interval; zero before the first record
	full    int
	perAddr map[string]int
	groups  map[groupKey]*group
	order   []groupKey // groups in the order they began, for a stable log
	ended   []Record   // counts of ended intervals not yet written
}

type groupKey struct {
	addr   string
	tenant [16]byte
	of     Kind
	reason string
}

type group struct{ count uint64 }

func newAggregator(cfg AggregationConfig) *aggregator {
	return &aggregator{cfg: cfg, perAddr: map[string]int{}, groups: map[groupKey]*group{}}
}

// count reports whether r is counted, not to be written; the others are
// written in full.
func (a *aggregator) count(r Record) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(r.Time, false)
	if a.full < a.cfg.MaxFull && a.perAddr[r.SourceAddr] < a.cfg.PerAddr {
		a.full++
		a.perAddr[r.SourceAddr]++
		return false
	}
	k := groupKey{addr: r.SourceAddr, tenant: r.Tenant, of: r.Kind, reason: r.Reason}
	g, ok := a.groups[k]
	if !ok && len(a.groups) >= a.cfg.MaxGroups {
		k = groupKey{of: r.Kind, reason: otherAddresses}
		g, ok = a.groups[k]
	}
	if !ok {
		g = &group{}
		a.groups[k] = g
		a.order = append(a.order, k)
	}
	g.count++
	return true
}

// roll ends the current interval if now is past it (or if all), moving
// its counts to ended, dated now: the records they count came before.
func (a *aggregator) roll(now time.Time, all bool) {
	if !all && now.Before(a.end) {
		return
	}
	for _, k := range a.order {
		a.ended = append(a.ended, Record{
			Time: now, Kind: Aggregated, Of: k.of, Count: a.groups[k].count,
			Tenant: k.tenant, SourceAddr: k.addr, Reason: k.reason,
		})
	}
	clear(a.groups)
	clear(a.perAddr)
	a.order, a.full = a.order[:0], 0
	a.end = now.Truncate(a.cfg.Interval).Add(a.cfg.Interval)
}

// take returns the counts of the intervals ended by now (all of them if
// all), for the writer to write.
func (a *aggregator) take(now time.Time, all bool) []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.end.IsZero() {
		a.roll(now, all)
	}
	out := a.ended
	a.ended = nil
	return out
}

// giveBack returns counts the writer could not write, to be tried again.
func (a *aggregator) giveBack(rs []Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ended = append(rs, a.ended...)
}
