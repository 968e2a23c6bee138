package audit

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the log's Prometheus metrics, for the node's registry
// (they carry no labels, so no personal data):
//
//	tresor_audit_writable               1 while the log takes records, 0 while it cannot write
//	tresor_audit_write_failures_total   writes that failed; each starts a period of refusals
//	tresor_audit_refused_records_total  records refused because the log could not write (each one a refused request)
//	tresor_audit_aggregated_records_total  records counted into an Aggregated record instead of written (Config.Aggregation)
func (l *Log) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tresor_audit_writable",
			Help: "1 while the login audit takes records, 0 while it cannot write (requests are refused with 503).",
		}, func() float64 {
			if l.failure() != nil {
				return 0
			}
			return 1
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tresor_audit_write_failures_total",
			Help: "Login audit writes that failed (a full disk, an I/O error); each starts a period of refused requests.",
		}, func() float64 { return float64(l.stats.failures.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tresor_audit_refused_records_total",
			Help: "Login audit records refused because the audit could not write; each is a request refused.",
		}, func() float64 { return float64(l.stats.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tresor_audit_aggregated_records_total",
			Help: "Refusals of requests that proved nothing, counted into an aggregated audit record instead of written one by one.",
		}, func() float64 { return float64(l.stats.aggregated.Load()) }),
	}
}
