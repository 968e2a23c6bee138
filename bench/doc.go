// Package bench will hold tresor's load generator and its reports: side by
// side runs of the gateway and the raw backend, and the failover drills of
// `tresor bench`. The format's own micro-benchmarks live beside the code they
// measure (gateway/envelope).
package bench
