// Package metrics is what the server exports to Prometheus: requests by
// listener, route and code, token requests by issuer and code, cache lookups, throttling, key transitions and
// database errors, on a registry of its own rather than the library's
// global one.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authz-dev/authz/route"
)

// Metrics counts what the server does; it implements issuer.Metrics.
type Metrics struct {
	registry       *prometheus.Registry
	httpRequests   *prometheus.CounterVec
	httpLatency    *prometheus.HistogramVec
	tokenRequests  *prometheus.CounterVec
	tokenLatency   *prometheus.HistogramVec
	clientLookups  *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	keyTransitions *prometheus.CounterVec
}

// latencyBuckets span a warm token (a fraction of a millisecond) to an
// import of a large realm (seconds).
var latencyBuckets = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 10}

// Build names the running build, for authz_build_info.
type Build struct{ Version, Commit, GoVersion string }

// New registers the server's metrics; failedQueries, when not nil, counts
// the database statements that failed.
func New(build Build, failedQueries func() int64) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_http_requests_total", Help: "HTTP requests by listener, route template, method and status code.",
		}, []string{"listener", "route", "method", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authz_http_request_duration_seconds", Help: "Time to answer an HTTP request, by listener, route template and method.",
			Buckets: latencyBuckets,
		}, []string{"listener", "route", "method"}),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_token_requests_total", Help: "Token requests by issuer and HTTP status code.",
		}, []string{"issuer", "code"}),
		tokenLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authz_token_request_duration_seconds", Help: "Time to answer a token request.",
			Buckets: latencyBuckets,
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
	// Label values known before the first event start at zero, so that a
	// rate over them exists from the first scrape.
	for _, by := range []string{"client", "address"} {
		m.throttled.WithLabelValues(by)
	}
	for _, result := range []string{"hit", "miss", "stale"} {
		m.clientLookups.WithLabelValues(result)
	}
	m.registry.MustRegister(m.httpRequests, m.httpLatency, m.tokenRequests, m.tokenLatency, m.clientLookups, m.throttled, m.keyTransitions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authz_build_info", Help: "The running build: always 1, with its version, commit and Go version as labels.",
	}, []string{"version", "commit", "goversion"})
	info.WithLabelValues(build.Version, build.Commit, build.GoVersion).Set(1)
	m.registry.MustRegister(info)
	if failedQueries != nil {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authz_database_errors_total", Help: "Database statements that failed.",
		}, func() float64 { return float64(failedQueries()) }))
	}
	return m
}

// Instrument counts and times every request h answers on the named
// listener, labelled by the template of the route that took it (route.Name)
// and never by its raw path. The known routes start at zero.
func (m *Metrics) Instrument(listener string, known []route.Known, h http.Handler) http.Handler {
	// Each request finds its two series in this cache instead of through
	// WithLabelValues, which validates and hashes every label each time (a
	// third of a microsecond a request). Its keys are bounded: route
	// templates, route.Method's verbs and the statuses handlers write.
	var series sync.Map // httpSeriesKey → httpSeries
	find := func(key httpSeriesKey) httpSeries {
		if s, ok := series.Load(key); ok {
			return s.(httpSeries)
		}
		s := httpSeries{
			requests: m.httpRequests.WithLabelValues(listener, key.route, key.method, strconv.Itoa(key.code)),
			latency:  m.httpLatency.WithLabelValues(listener, key.route, key.method),
		}
		series.Store(key, s)
		return s
	}
	for _, k := range known {
		find(httpSeriesKey{k.Template, k.Method, http.StatusOK})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := route.NewStatusWriter(w)
		h.ServeHTTP(sw, r)
		s := find(httpSeriesKey{sw.Template, route.Method(r.Method), sw.Status})
		s.requests.Inc()
		s.latency.Observe(time.Since(start).Seconds())
	})
}

type httpSeriesKey struct {
	route, method string
	code          int
}

type httpSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// TokenRequest counts a token request and its duration.
func (m *Metrics) TokenRequest(issuer string, status int, elapsed time.Duration) {
	m.tokenRequests.WithLabelValues(issuer, strconv.Itoa(status)).Inc()
	m.tokenLatency.WithLabelValues(issuer).Observe(elapsed.Seconds())
}

// ClientLookup counts a client cache lookup by result.
func (m *Metrics) ClientLookup(result string) { m.clientLookups.WithLabelValues(result).Inc() }

// Throttled counts a request refused by a failed-authentication limit.
func (m *Metrics) Throttled(by string) { m.throttled.WithLabelValues(by).Inc() }

// KeysAdvanced counts an issuer whose keys this node moved on.
func (m *Metrics) KeysAdvanced(issuer string) { m.keyTransitions.WithLabelValues(issuer).Inc() }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
