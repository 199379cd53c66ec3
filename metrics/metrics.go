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
	registry      *prometheus.Registry
	httpRequests  *prometheus.CounterVec
	httpLatency   *prometheus.HistogramVec
	tokenRequests *prometheus.CounterVec
	tokenLatency  *prometheus.HistogramVec
	clientLookups *prometheus.CounterVec
	issuerLookups *prometheus.CounterVec
	// clientSeries and issuerSeries are the lookup counters by result,
	// read-only after New.
	clientSeries, issuerSeries map[string]prometheus.Counter
	throttled                  *prometheus.CounterVec
	keyTransitions             prometheus.Counter

	// tokenSeries caches each issuer's series of authz_token_requests_total
	// by (issuer, code); issuers past maxIssuerSeries share "other".
	tokenSeries     sync.Map // tokenSeriesKey → prometheus.Counter
	tokenSeriesMu   sync.RWMutex
	issuersLabelled map[string]bool
	maxIssuerSeries int
}

type tokenSeriesKey struct {
	issuer string
	code   int
}

// DefaultMaxIssuerSeries is how many issuers get token series of their
// own: with 100,000 issuers, a series per issuer and code would swamp
// Prometheus.
const DefaultMaxIssuerSeries = 1000

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
		}, nil),
		clientLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_client_cache_lookups_total", Help: "Client cache lookups: hit, miss, or stale (served while the database is unreachable).",
		}, []string{"result"}),
		issuerLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_issuer_cache_lookups_total", Help: "Issuer cache lookups: hit, miss, or stale (served while the database is unreachable).",
		}, []string{"result"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authz_rate_limited_total", Help: "Requests refused by the failed-authentication limits, by client or address.",
		}, []string{"by"}),
		keyTransitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authz_key_transitions_total", Help: "Rotations advanced by this node: keys published, promoted or deleted.",
		}),
		issuersLabelled: map[string]bool{},
		maxIssuerSeries: DefaultMaxIssuerSeries,
	}
	// Label values known before the first event start at zero, so that a
	// rate over them exists from the first scrape.
	for _, by := range []string{"client", "address"} {
		m.throttled.WithLabelValues(by)
	}
	m.clientSeries, m.issuerSeries = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for _, result := range []string{"hit", "miss", "stale"} {
		m.clientSeries[result] = m.clientLookups.WithLabelValues(result)
		m.issuerSeries[result] = m.issuerLookups.WithLabelValues(result)
	}
	m.registry.MustRegister(m.httpRequests, m.httpLatency, m.tokenRequests, m.tokenLatency, m.clientLookups, m.issuerLookups, m.throttled, m.keyTransitions,
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

// TokenRequest counts a token request and its duration. Its series is
// found in a cache rather than through WithLabelValues, which validates and
// hashes the labels each time.
func (m *Metrics) TokenRequest(issuer string, status int, elapsed time.Duration) {
	key := tokenSeriesKey{issuer, status}
	counter, ok := m.tokenSeries.Load(key)
	if !ok {
		counter = m.tokenCounter(key)
	}
	counter.(prometheus.Counter).Inc()
	m.tokenLatency.WithLabelValues().Observe(elapsed.Seconds())
}

// tokenCounter finds the series of an (issuer, code) not in the cache: the
// issuer gets a label of its own while fewer than maxIssuerSeries have one,
// and counts under "other" after. Series of "other" are cached by code
// alone, so that 100,000 issuers do not fill the cache.
func (m *Metrics) tokenCounter(key tokenSeriesKey) prometheus.Counter {
	other := tokenSeriesKey{"other", key.code}
	m.tokenSeriesMu.RLock()
	full := !m.issuersLabelled[key.issuer] && len(m.issuersLabelled) >= m.maxIssuerSeries
	m.tokenSeriesMu.RUnlock()
	if full {
		if counter, ok := m.tokenSeries.Load(other); ok {
			return counter.(prometheus.Counter)
		}
	}
	m.tokenSeriesMu.Lock()
	defer m.tokenSeriesMu.Unlock()
	if !m.issuersLabelled[key.issuer] && len(m.issuersLabelled) >= m.maxIssuerSeries {
		key = other
	} else {
		m.issuersLabelled[key.issuer] = true
	}
	counter := m.tokenRequests.WithLabelValues(key.issuer, strconv.Itoa(key.code))
	m.tokenSeries.Store(key, counter)
	return counter
}

// IssuerGone drops a deleted issuer's token series, and its claim on a
// series of its own.
func (m *Metrics) IssuerGone(issuer string) {
	m.tokenSeriesMu.RLock()
	labelled := m.issuersLabelled[issuer]
	m.tokenSeriesMu.RUnlock()
	if !labelled {
		return
	}
	m.tokenSeriesMu.Lock()
	defer m.tokenSeriesMu.Unlock()
	delete(m.issuersLabelled, issuer)
	m.tokenSeries.Range(func(k, _ any) bool {
		if k.(tokenSeriesKey).issuer == issuer {
			m.tokenSeries.Delete(k)
		}
		return true
	})
	m.tokenRequests.DeletePartialMatch(prometheus.Labels{"issuer": issuer})
}

// ClientLookup counts a client cache lookup by result.
func (m *Metrics) ClientLookup(result string) { lookup(m.clientLookups, m.clientSeries, result) }

// IssuerLookup counts an issuer cache lookup by result.
func (m *Metrics) IssuerLookup(result string) { lookup(m.issuerLookups, m.issuerSeries, result) }

// lookup counts a cache lookup through its series made at start-up, as
// every token request makes two.
func lookup(vec *prometheus.CounterVec, series map[string]prometheus.Counter, result string) {
	if c, ok := series[result]; ok {
		c.Inc()
		return
	}
	vec.WithLabelValues(result).Inc()
}

// Throttled counts a request refused by a failed-authentication limit.
func (m *Metrics) Throttled(by string) { m.throttled.WithLabelValues(by).Inc() }

// KeysAdvanced counts an issuer whose keys this node moved on.
func (m *Metrics) KeysAdvanced(string) { m.keyTransitions.Inc() }

// KeyCache exports the keyring's lookups, read from stats at each scrape.
func (m *Metrics) KeyCache(stats func() (hits, misses uint64)) {
	for _, result := range []string{"hit", "miss"} {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authz_key_cache_lookups_total", Help: "Keyring lookups of an issuer's keys: hit, or miss (loaded from the database).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 {
			hits, misses := stats()
			if result == "hit" {
				return float64(hits)
			}
			return float64(misses)
		}))
	}
}

// CacheEntries exports how many entries each named cache holds, read from
// sizes at each scrape.
func (m *Metrics) CacheEntries(sizes map[string]func() int) {
	for name, size := range sizes {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "authz_cache_entries", Help: "Entries held by each cache: issuers, clients and keys.",
			ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { return float64(size()) }))
	}
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
