package issuer

import (
	"crypto/sha256"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// failureLimiter is a set of token buckets that only failures drain: each
// key may fail `burst` times at once and then once per 1/rate seconds. A
// key whose bucket is empty is refused before its credentials are checked,
// which bounds what a brute-force attack can try and costs it nothing to
// be told so.
type failureLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*failureBucket
}

type failureBucket struct {
	tokens float64
	last   time.Time
}

// maxTrackedKeys bounds the limiter's memory; past it, buckets that have
// refilled (and so hold no information) are dropped first, and then
// arbitrary ones, down to nine tenths, so that the sweep runs once per
// tenth of the capacity, not once per failure.
const maxTrackedKeys = 100_000

// newFailureLimiter allows perMinute failures a minute per key, all of them
// at once if need be. perMinute <= 0 disables it.
func newFailureLimiter(perMinute int, now func() time.Time) *failureLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &failureLimiter{rate: float64(perMinute) / 60, burst: float64(perMinute), now: now, buckets: map[string]*failureBucket{}}
}

// refill brings a bucket to the present; the caller holds the lock.
func (l *failureLimiter) refill(b *failureBucket, now time.Time) {
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
}

// blocked reports whether key has no failures left, and how long until it
// has one.
func (l *failureLimiter) blocked(key string) (time.Duration, bool) {
	if l == nil || key == "" {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return 0, false
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return 0, false
	}
	// Rounded up to the millisecond: never tell a caller to come back early.
	return time.Duration(math.Ceil((1-b.tokens)/l.rate*1000)) * time.Millisecond, true
}

// fail spends one of key's failures.
func (l *failureLimiter) fail(key string) {
	if l == nil || key == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxTrackedKeys {
			l.makeRoom(now)
		}
		b = &failureBucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// makeRoom drops refilled buckets, then, if the limiter is still nearly
// full, arbitrary ones: forgetting some failures costs less than a sweep
// per failure under the lock every request takes.
func (l *failureLimiter) makeRoom(now time.Time) {
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) <= maxTrackedKeys*9/10 {
			return
		}
		delete(l.buckets, k)
	}
}

// Failures are counted per (client id, source address) and per source
// address, never per client id alone: client ids are public (every token
// carries one), so a bucket shared by all of a client's callers would let
// a stranger lock the client out by failing in its name. A caller
// presenting valid credentials is refused only for failures from its own
// address.

// clientFailureKey is the bucket of the client a request claims to be, at
// the address it comes from: a digest, so that a long made-up id costs the
// limiter no more memory than a short one.
func clientFailureKey(req *request) string {
	return clientFailureKeyOf(req.tenant.issuer.Name, req.credentials.clientID, req.source)
}

// clientFailureKeyOf is clientFailureKey before the request's issuer is
// loaded, from the name in its path.
func clientFailureKeyOf(issuerName, clientID, source string) string {
	if clientID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(issuerName + "\x00" + clientID + "\x00" + source))
	return string(sum[:16])
}

// throttledError refuses a request whose client was found, late, to be past
// its limit: an assertion names its client only in its sub.
type throttledError struct{ wait time.Duration }

func (e *throttledError) Error() string { return "too many failed authentications" }

// refuseIfThrottled answers 429 when the request's client id at its
// source address has used up its failed authentications, and reports
// whether it did. The source address alone was checked on admission.
func (s *Server) refuseIfThrottled(w http.ResponseWriter, r *http.Request, req *request) bool {
	wait, blocked := s.clientFailures.blocked(clientFailureKey(req))
	if !blocked {
		return false
	}
	s.refuseThrottled(w, r, wait, "client", slog.String("issuer", req.tenant.issuer.Name), req.clientAttr(), slog.String("source", req.source))
	return true
}

// refuseThrottledAddress answers 429 when the source address has used up
// its failures, and reports whether it did.
func (s *Server) refuseThrottledAddress(w http.ResponseWriter, r *http.Request, source string) bool {
	wait, blocked := s.addressFailures.blocked(source)
	if !blocked {
		return false
	}
	s.refuseThrottled(w, r, wait, "address", slog.String("source", source))
	return true
}

func (s *Server) refuseThrottled(w http.ResponseWriter, r *http.Request, wait time.Duration, by string, attrs ...slog.Attr) {
	seconds := int(math.Ceil(wait.Seconds()))
	s.cfg.Metrics.Throttled(by)
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request throttled", append(attrs, slog.String("by", by), slog.Int("retry_after_s", seconds))...)
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	writeJSONError(w, http.StatusTooManyRequests, "temporarily_unavailable",
		"Too many failed requests; retry in "+strconv.Itoa(seconds)+" s.")
}

// recordAuthFailure spends a failure of the request's client id at its
// source, and of its source.
func (s *Server) recordAuthFailure(req *request) {
	s.clientFailures.fail(clientFailureKey(req))
	s.addressFailures.fail(req.source)
}

// AdmitCaller is the failure throttle of this server's token endpoint for
// other endpoints of the public listener, such as client registration: it
// answers 429 and reports false when the request's source address has
// used up its failures. It returns the source, for CallerFailed.
func (s *Server) AdmitCaller(w http.ResponseWriter, r *http.Request) (string, bool) {
	_, source := s.cfg.Identify(r)
	return source, !s.refuseThrottledAddress(w, r, source)
}

// CallerFailed spends one of the source address's failures, as a failed
// client authentication at the token endpoint does.
func (s *Server) CallerFailed(source string) { s.addressFailures.fail(source) }
