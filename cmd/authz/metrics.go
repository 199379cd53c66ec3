package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authz-dev/authz/store"
)

// metrics is what the server exports to Prometheus, on a registry of its
// own rather than the library's global one.
type metrics struct {
	registry       *prometheus.Registry
	tokenRequests  *prometheus.CounterVec
	tokenLatency   *prometheus.HistogramVec
	clientLookups  *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	keyTransitions *prometheus.CounterVec
}

// failureCounter is a store that counts its failed queries.
type failureCounter interface{ FailedQueries() int64 }

func newMetrics(st store.Store) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_token_requests_total", Help: "Token requests by issuer and HTTP status.",
		}, []string{"issuer", "status"}),
		tokenLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authz_token_request_duration_seconds", Help: "Time to answer a token request.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"issuer"}),
		clientLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_client_cache_lookups_total", Help: "Client cache lookups: hit, miss, or stale (served while the database is unreachable).",
		}, []string{"result"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_rate_limited_total", Help: "Requests refused by the failed-authentication limits, by client or address.",
		}, []string{"by"}),
		keyTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_key_transitions_total", Help: "Rotations advanced by this node: keys published, promoted or deleted.",
		}, []string{"issuer"}),
	}
	m.registry.MustRegister(m.tokenRequests, m.tokenLatency, m.clientLookups, m.throttled, m.keyTransitions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if fc, ok := st.(failureCounter); ok {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authz_database_errors_total", Help: "Database statements that failed.",
		}, func() float64 { return float64(fc.FailedQueries()) }))
	}
	return m
}

func (m *metrics) TokenRequest(issuer string, status int, elapsed time.Duration) {
	m.tokenRequests.WithLabelValues(issuer, strconv.Itoa(status)).Inc()
	m.tokenLatency.WithLabelValues(issuer).Observe(elapsed.Seconds())
}

func (m *metrics) ClientLookup(result string) { m.clientLookups.WithLabelValues(result).Inc() }
func (m *metrics) Throttled(by string)        { m.throttled.WithLabelValues(by).Inc() }
func (m *metrics) KeysAdvanced(issuer string) { m.keyTransitions.WithLabelValues(issuer).Inc() }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
