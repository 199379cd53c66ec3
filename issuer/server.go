// Package issuer serves the OAuth2 protocol of every CredentialIssuer: the
// client-credentials token endpoint (on fosite), discovery metadata and the
// JWKS, plus health and readiness.
package issuer

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/authz-dev/authz/document"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/lru"
	"github.com/authz-dev/authz/route"
	"github.com/authz-dev/authz/store"
)

// Store is the part of the store the public endpoints read.
type Store interface {
	GetClient(ctx context.Context, issuerName, clientID string) (store.Client, error)
	RecordAssertion(ctx context.Context, issuerName, clientID, jti string, expiresAt time.Time) error
	DeleteExpiredAssertions(ctx context.Context, now time.Time) (int64, error)
	Ping(ctx context.Context) error
}

// Keyring serves issuers' signing keys and published key sets, loading an
// issuer's on its first use. LoadIssuer reads an issuer from the store with
// its keys, keeping them, and the client a token request names, so that a
// cold issuer's first token reads all three in one round trip. Promote
// marks an issuer's keys as in steady use.
type Keyring interface {
	Active(ctx context.Context, issuerName string) (*keys.ActiveKey, error)
	JWKS(ctx context.Context, issuerName string) (*keys.JWKS, error)
	LoadIssuer(ctx context.Context, issuerName, clientID string) (iss store.Issuer, client *store.Client, clientRead bool, err error)
	Promote(issuerName string)
}

// Metrics receives what the public endpoints count; implementations must
// be safe for concurrent use and cheap, as they run on every request.
type Metrics interface {
	// TokenRequest counts a token request by issuer (or "unknown") and
	// HTTP status, with its duration.
	TokenRequest(issuer string, status int, elapsed time.Duration)
	// ClientLookup counts client cache lookups: "hit", "miss" or "stale".
	ClientLookup(result string)
	// IssuerLookup counts issuer cache lookups, likewise.
	IssuerLookup(result string)
	// IssuerGone is told of an issuer found deleted, whose series may go.
	IssuerGone(issuer string)
	// Throttled counts requests refused by a failed-authentication limit,
	// by "client" or "address".
	Throttled(by string)
}

type noMetrics struct{}

func (noMetrics) TokenRequest(string, int, time.Duration) {}
func (noMetrics) ClientLookup(string)                     {}
func (noMetrics) IssuerLookup(string)                     {}
func (noMetrics) IssuerGone(string)                       {}
func (noMetrics) Throttled(string)                        {}

// Config is the public side's configuration.
type Config struct {
	// Version names this build in /healthz's answer.
	Version string
	// PublicURL is the externally visible base URL, without a trailing
	// slash; issuer URLs are PublicURL + "/issuers/" + name.
	PublicURL string
	// MetadataMaxAge sets the Cache-Control max-age of discovery documents.
	// The JWKS's comes from each issuer's key schedule.
	MetadataMaxAge time.Duration
	// MaxRequestBytes bounds a token request body.
	MaxRequestBytes int64
	// ClientCacheSize bounds how many clients (known or unknown) are kept
	// in memory, IssuerCacheSize how many issuers; CacheTTL bounds how long
	// a cached issuer or client is trusted without a change notification.
	ClientCacheSize int
	IssuerCacheSize int
	CacheTTL        time.Duration
	// StaleWindow is how old cached issuers and clients may grow while the
	// database is unreachable before requests needing them are refused.
	StaleWindow time.Duration
	// AllowPrivateJWKSURI lets clients' jwks_uri reach loopback and private
	// addresses over plain http: for tests and closed networks only.
	AllowPrivateJWKSURI bool
	// AuthFailuresPerClient bounds failed client authentications a minute
	// per client id and source address, AuthFailuresPerAddress per source
	// address (unknown issuer names count too); past them requests get 429
	// before any credential is checked. 0 disables.
	AuthFailuresPerClient  int
	AuthFailuresPerAddress int
	// Identify names where a request comes from, read once: the address,
	// as Keycloak-style tokens carry it, and the caller, the key of the
	// failure limits; nil means the peer's IP address for both.
	Identify func(*http.Request) (address, caller string)
	// MaxAssertionLifetime is how far ahead a client assertion's exp may
	// be; 0 means an hour.
	MaxAssertionLifetime time.Duration
	// Metrics, when set, counts requests, cache lookups and throttling.
	Metrics Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the public endpoints.
type Server struct {
	cfg   Config
	store Store
	keys  Keyring
	// globalSecret satisfies fosite, which insists on one although only its
	// HMAC token strategies, never composed here, would use it.
	globalSecret []byte
	// provider runs the grant for every issuer: what differs between
	// issuers reaches it in the request's session (tokenSession.tenant), so
	// that a node holding thousands of issuers does not hold a fosite
	// configuration and handler chain for each.
	provider fosite.OAuth2Provider

	clients *clientCache
	jwks    *jwksFetcher
	// decoys are keys that refusals of assertions verify against.
	decoys func() decoyKeys

	clientFailures, addressFailures *failureLimiter

	// readiness is /readyz's last look at the database.
	readiness readinessCheck
	// skipStoreUntil, in Unix nanoseconds, is set after the store was found
	// unreachable: until then requests serve stale entries without asking
	// it, so a database that hangs rather than refuses costs no request a
	// wait.
	skipStoreUntil atomic.Int64

	// tenants holds issuers that exist, unknownTenants names that do not:
	// apart, so that requests for made-up names, which anyone can send,
	// can only evict other made-up names.
	tenants, unknownTenants *lru.Cache[string, *tenant]
	refreshes               *refreshAhead
}

// tenant is one issuer's protocol state, built when the issuer is first
// used and dropped when it changes. A tenant without an issuer records
// that the issuer does not exist.
type tenant struct {
	issuer    store.Issuer
	issuerURL string
	metadata  *document.Document
	loadedAt  time.Time
}

func (t *tenant) exists() bool { return t.issuer.Name != "" }

// DefaultMaxRequestBytes bounds a token or introspection request body
// unless configured otherwise: a form of a few parameters and at most an
// assertion.
const DefaultMaxRequestBytes = 64 << 10

// maxUnknownTenants bounds the cache of issuer names that do not exist.
const maxUnknownTenants = 10_000

// DefaultIssuerCacheSize and DefaultClientCacheSize are how many issuers
// and clients a node keeps ready unless told otherwise.
const (
	DefaultIssuerCacheSize = 20_000
	DefaultClientCacheSize = 100_000
)

// New returns a Server reading from st and signing with ring.
func New(cfg Config, st Store, ring Keyring) *Server {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.ClientCacheSize == 0 {
		cfg.ClientCacheSize = DefaultClientCacheSize
	}
	if cfg.IssuerCacheSize == 0 {
		cfg.IssuerCacheSize = DefaultIssuerCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.StaleWindow < cfg.CacheTTL {
		cfg.StaleWindow = max(cfg.CacheTTL, 15*time.Minute)
	}
	if cfg.Identify == nil {
		cfg.Identify = func(r *http.Request) (string, string) {
			peer := peerAddress(r)
			return peer, peer
		}
	}
	if cfg.MaxAssertionLifetime <= 0 {
		cfg.MaxAssertionLifetime = time.Hour
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s := &Server{
		cfg:             cfg,
		store:           st,
		keys:            ring,
		globalSecret:    secret,
		clients:         newClientCache(cfg.ClientCacheSize, cfg.Now),
		decoys:          sync.OnceValue(makeDecoys),
		jwks:            newJWKSFetcher(cfg.AllowPrivateJWKSURI, cfg.Now),
		refreshes:       newRefreshAhead(cfg.Logger, cfg.Now, cfg.CacheTTL),
		clientFailures:  newFailureLimiter(cfg.AuthFailuresPerClient, cfg.Now),
		addressFailures: newFailureLimiter(cfg.AuthFailuresPerAddress, cfg.Now),
		tenants:         lru.New[string, *tenant](cfg.IssuerCacheSize),
		unknownTenants:  lru.New[string, *tenant](maxUnknownTenants),
	}
	s.provider = compose.Compose(&fosite.Config{
		ScopeStrategy:                fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:     fosite.ExactAudienceMatchingStrategy,
		ClientAuthenticationStrategy: s.fositeAuthentication,
		GlobalSecret:                 s.globalSecret,
	}, fositeStorage{}, &accessTokenStrategy{keys: s.keys}, compose.OAuth2ClientCredentialsGrantFactory)
	return s
}

// Invalidate drops what a change made stale. Wire it to store.Watch so that
// every node sees every other node's writes.
func (s *Server) Invalidate(c store.Change) {
	switch c.Kind {
	case store.ChangeClient:
		s.clients.invalidate(clientKey{c.Issuer, c.ClientID})
	case store.ChangeIssuer:
		s.tenants.Remove(c.Issuer)
		s.unknownTenants.Remove(c.Issuer)
		s.clients.invalidateIssuer(c.Issuer)
	case store.ChangeAll:
		s.tenants.Clear()
		s.unknownTenants.Clear()
		s.clients.clear()
	}
}

// client returns a stored client from the cache or, on a miss, the store.
// While the store is unreachable, a cached client serves for the staleness
// window.
func (s *Server) client(ctx context.Context, issuerName, clientID string) (*store.Client, error) {
	key := clientKey{issuerName, clientID}
	found := func(c *store.Client) (*store.Client, error) {
		if c == nil {
			return nil, store.ErrNotFound
		}
		return c, nil
	}
	e, cached, epoch := s.clients.lookup(key)
	var age time.Duration
	if cached {
		age = s.cfg.Now().Sub(e.loadedAt)
	}
	if cached && age < s.cfg.CacheTTL {
		s.cfg.Metrics.ClientLookup("hit")
		return found(e.client)
	}
	haveStale := cached && age < s.cfg.StaleWindow
	if haveStale && s.storeBackingOff() {
		s.cfg.Metrics.ClientLookup("stale")
		return found(e.client)
	}
	s.cfg.Metrics.ClientLookup("miss")
	ctx, cancel := context.WithTimeout(ctx, storeRefreshTimeout)
	defer cancel()
	c, err := s.loadClient(ctx, key, epoch)
	if errors.Is(err, store.ErrUnavailable) && haveStale {
		s.cfg.Metrics.ClientLookup("stale")
		return found(e.client)
	}
	return c, err
}

// loadClient reads a client from the store into the cache, or the
// knowledge that it does not exist.
func (s *Server) loadClient(ctx context.Context, key clientKey, epoch uint64) (*store.Client, error) {
	rec, err := s.store.GetClient(ctx, key.issuer, key.id)
	if err != nil {
		s.backOffIfUnavailable(err)
		if errors.Is(err, store.ErrNotFound) {
			s.clients.put(key, nil, epoch)
		}
		return nil, err
	}
	s.clients.put(key, &rec, epoch)
	return &rec, nil
}

// promote marks an issuer, its keys and one of its clients as in steady
// use. Only uses a stranger cannot make do: a token issued to an
// authenticated client, a valid token verified (introspection promotes its
// caller too).
// Names and client ids are public, and a stranger's lookups of them,
// however many and however often, must not push the entries in use out of
// the caches.
//
// The same uses start the reloads of entries near their TTL (see
// refreshAhead), so that a stranger's lookups start none.
func (s *Server) promote(issuerName, clientID string) {
	now := s.cfg.Now()
	t, cached, tenantEpoch := s.tenants.Promote(issuerName)
	if cached && s.dueForRefresh(now.Sub(t.loadedAt)) {
		name := t.issuer.Name // the record's string, not the request's
		s.refreshes.start(issuerRefresh(name), func(ctx context.Context) error {
			_, err := s.loadTenant(ctx, name, tenantEpoch, "")
			return err
		})
	}
	s.keys.Promote(issuerName)
	e, cached, clientEpoch := s.clients.promote(clientKey{issuerName, clientID})
	if cached && e.client != nil && s.dueForRefresh(now.Sub(e.loadedAt)) {
		key := clientKey{e.client.IssuerName, e.client.ID} // the record's strings
		s.refreshes.start(key, func(ctx context.Context) error {
			_, err := s.loadClient(ctx, key, clientEpoch)
			return err
		})
	}
}

// dueForRefresh says whether an entry this old, in steady use, is to be
// reloaded ahead of its TTL.
func (s *Server) dueForRefresh(age time.Duration) bool {
	return age >= refreshAfter(s.cfg.CacheTTL) && age < s.cfg.CacheTTL && !s.storeBackingOff()
}

// CacheEntries names the server's caches with their sizes, for metrics.
func (s *Server) CacheEntries() map[string]func() int {
	return map[string]func() int{"issuers": s.tenants.Len, "clients": s.clients.len}
}

// IssuerURL is the iss of every token iss signs: {public}/issuers/{name},
// or {public}/realms/{name} Keycloak-style.
func (s *Server) IssuerURL(iss store.Issuer) string {
	if iss.Keycloak() {
		return s.cfg.PublicURL + "/realms/" + iss.Name
	}
	return s.cfg.PublicURL + "/issuers/" + iss.Name
}

// TokenURL is where iss's clients request tokens.
func (s *Server) TokenURL(iss store.Issuer) string {
	if iss.Keycloak() {
		return s.IssuerURL(iss) + "/protocol/openid-connect/token"
	}
	return s.IssuerURL(iss) + "/token"
}

// JWKSURL is where iss publishes its keys.
func (s *Server) JWKSURL(iss store.Issuer) string {
	if iss.Keycloak() {
		return s.IssuerURL(iss) + "/protocol/openid-connect/certs"
	}
	return s.IssuerURL(iss) + "/jwks.json"
}

// IntrospectionURL is where iss's clients introspect tokens (RFC 7662).
func (s *Server) IntrospectionURL(iss store.Issuer) string {
	if iss.Keycloak() {
		return s.TokenURL(iss) + "/introspect"
	}
	return s.IssuerURL(iss) + "/introspect"
}

// RegistrationURL is iss's dynamic client registration endpoint
// (RFC 7591), where Keycloak has it; the portal finds Keycloak's own
// representation beside it, with /openid-connect replaced by /default.
func (s *Server) RegistrationURL(iss store.Issuer) string {
	return s.IssuerURL(iss) + "/clients-registrations/openid-connect"
}

// publicRoute is one endpoint of the public listener.
type publicRoute struct {
	method, pattern string
	handler         http.Handler
}

func (s *Server) routes() []publicRoute {
	styled := func(serve func(http.ResponseWriter, *http.Request, string), style string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, style) })
	}
	native, kc := store.URLStyleNative, store.URLStyleKeycloak
	get, post := http.MethodGet, http.MethodPost
	return []publicRoute{
		{get, "/healthz", http.HandlerFunc(s.serveHealth)},
		{get, "/readyz", http.HandlerFunc(s.serveReady)},
		{post, "/issuers/{name}/token", styled(s.serveToken, native)},
		{get, "/issuers/{name}/jwks.json", styled(s.serveJWKS, native)},
		{post, "/issuers/{name}/introspect", styled(s.serveIntrospection, native)},
		{get, "/issuers/{name}/.well-known/openid-configuration", styled(s.serveMetadata, native)},
		{get, "/issuers/{name}/.well-known/oauth-authorization-server", styled(s.serveMetadata, native)},
		// RFC 8414 §3.1 inserts the well-known segment before the issuer's path.
		{get, "/.well-known/oauth-authorization-server/issuers/{name}", styled(s.serveMetadata, native)},
		{get, "/.well-known/openid-configuration/issuers/{name}", styled(s.serveMetadata, native)},
		{post, "/realms/{name}/protocol/openid-connect/token", styled(s.serveToken, kc)},
		{get, "/realms/{name}/protocol/openid-connect/certs", styled(s.serveJWKS, kc)},
		{post, "/realms/{name}/protocol/openid-connect/token/introspect", styled(s.serveIntrospection, kc)},
		{get, "/realms/{name}/.well-known/openid-configuration", styled(s.serveMetadata, kc)},
		{get, "/realms/{name}/.well-known/oauth-authorization-server", styled(s.serveMetadata, kc)},
		{get, "/.well-known/oauth-authorization-server/realms/{name}", styled(s.serveMetadata, kc)},
	}
}

// Routes are the public endpoints, for observers that report each from
// the start.
func (s *Server) Routes() []route.Known {
	var known []route.Known
	for _, rt := range s.routes() {
		known = append(known, route.Known{Method: rt.method, Template: rt.pattern})
	}
	return known
}

// Handler routes the public endpoints of both URL styles; each issuer
// answers only under its own. It uses the standard library's pattern mux,
// which matches without regular expressions: every token and JWKS request
// passes through it.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	for _, rt := range s.routes() {
		m.Handle(rt.pattern, route.Named(rt.pattern, rt.handler))
	}
	m.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "not_found", "No such endpoint.")
	})
	return m
}

// How the caches treat an unreachable store: each refresh may take this
// long, and after a failure the store is left alone this long.
const (
	storeRefreshTimeout = 2 * time.Second
	storeBackoff        = 5 * time.Second
)

// backOffIfUnavailable leaves the store alone for a while after err, if
// err says it is unreachable.
func (s *Server) backOffIfUnavailable(err error) {
	if errors.Is(err, store.ErrUnavailable) {
		s.skipStoreUntil.Store(s.cfg.Now().Add(storeBackoff).UnixNano())
	}
}

func (s *Server) storeBackingOff() bool {
	return s.cfg.Now().UnixNano() < s.skipStoreUntil.Load()
}

// tenantFor returns issuerName's protocol state, or store.ErrNotFound.
// clientID, if not nil, names the client the request is about to look up,
// and is called only if the issuer is loaded: that client is then read
// with it (loadTenant).
func (s *Server) tenantFor(ctx context.Context, issuerName string, clientID func() string) (*tenant, error) {
	cached, ok, epoch := s.tenants.Get(issuerName)
	var isUnknown bool
	var unknownEpoch uint64
	if !ok {
		cached, isUnknown, unknownEpoch = s.unknownTenants.Get(issuerName)
		ok = isUnknown
	}
	serve := func(t *tenant) (*tenant, error) {
		if !t.exists() {
			return nil, store.ErrNotFound
		}
		return t, nil
	}
	var age time.Duration
	if ok {
		age = s.cfg.Now().Sub(cached.loadedAt)
	}
	if ok && age < s.cfg.CacheTTL {
		s.cfg.Metrics.IssuerLookup("hit")
		return serve(cached)
	}
	haveStale := ok && age < s.cfg.StaleWindow
	if haveStale && s.storeBackingOff() {
		s.cfg.Metrics.IssuerLookup("stale")
		return serve(cached)
	}

	s.cfg.Metrics.IssuerLookup("miss")
	if !isUnknown {
		unknownEpoch = s.unknownTenants.Epoch()
	}
	refreshCtx, cancel := context.WithTimeout(ctx, storeRefreshTimeout)
	defer cancel()
	var withClient string
	if clientID != nil {
		withClient = clientID()
	}
	t, err := s.loadTenant(refreshCtx, issuerName, epoch, withClient)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.unknownTenants.Put(issuerName, &tenant{loadedAt: s.cfg.Now()}, unknownEpoch)
		return nil, err
	case errors.Is(err, store.ErrUnavailable):
		if haveStale {
			return serve(cached)
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	if isUnknown {
		s.unknownTenants.Remove(issuerName)
	}
	return t, nil
}

// loadTenant reads an issuer, with its keys if this node holds none, into
// the cache; an issuer that is gone leaves it. With its keys it reads the
// client clientID names (see clientToReadWithIssuer), unless that client
// is cached and fresh, and caches it, or that it does not exist, as
// Server.client would: the request about to look it up then finds it.
func (s *Server) loadTenant(ctx context.Context, issuerName string, epoch uint64, clientID string) (*tenant, error) {
	var clientEpoch uint64
	if clientID != "" {
		e, cached, ep := s.clients.lookup(clientKey{issuerName, clientID})
		if cached && s.cfg.Now().Sub(e.loadedAt) < s.cfg.CacheTTL {
			clientID = ""
		}
		clientEpoch = ep
	}
	iss, client, clientRead, err := s.keys.LoadIssuer(ctx, issuerName, clientID)
	if clientRead {
		s.clients.put(clientKey{issuerName, clientID}, client, clientEpoch)
	}
	if err != nil {
		s.backOffIfUnavailable(err)
		// Only an issuer this node held is gone, and counted once however
		// many loads of it ended so; a name never held is a stranger's
		// guess, and leaves no note in the cache.
		if errors.Is(err, store.ErrNotFound) && s.tenants.RemoveIfPresent(issuerName) {
			s.cfg.Metrics.IssuerGone(issuerName)
		}
		return nil, err
	}
	t, err := s.newTenant(iss)
	if err != nil {
		return nil, err
	}
	s.tenants.Put(issuerName, t, epoch)
	return t, nil
}

func (s *Server) newTenant(iss store.Issuer) (*tenant, error) {
	meta, err := s.renderMetadata(iss)
	if err != nil {
		return nil, err
	}
	return &tenant{issuer: iss, issuerURL: s.IssuerURL(iss), metadata: meta, loadedAt: s.cfg.Now()}, nil
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Status  string `json:"status"`
		Version string `json:"version,omitempty"`
	}{"ok", s.cfg.Version})
}

// serveReady reports whether this node should get traffic. While the
// database is unreachable the node still serves cached issuers, clients and
// keys, so it stays ready, "degraded", until the staleness window has
// passed: pulling every node when the shared database fails would turn a
// database outage into a total one.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	check := s.databaseReachable(r.Context())
	if check.err == nil {
		writeJSON(w, map[string]string{"status": "ready"})
		return
	}
	down := s.cfg.Now().Sub(check.downSince).Truncate(time.Second)
	if check.fresh {
		s.cfg.Logger.Warn("database unreachable", "for", down.String(), "err", check.err.Error())
	}
	if down >= s.cfg.StaleWindow {
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, map[string]string{"status": "unavailable",
			"reason": "database unreachable for " + down.String() + ", longer than the staleness window " + s.cfg.StaleWindow.String()})
		return
	}
	writeJSON(w, map[string]string{"status": "degraded",
		"reason": "database unreachable for " + down.String() + "; serving cached issuers, clients and keys for up to " + s.cfg.StaleWindow.String()})
}

// readinessCheck remembers the last ping of the database. /readyz is public
// and a stranger may call it as often as he likes: no call of his may
// become a query of its own, or wait behind one.
type readinessCheck struct {
	mu       sync.Mutex
	checking bool
	at       time.Time
	err      error
	// downSince is when the pings started failing; zero while they pass.
	downSince time.Time
}

// readinessAnswer is what databaseReachable found: the last ping's error,
// since when pings have failed, and whether this call pinged.
type readinessAnswer struct {
	err       error
	downSince time.Time
	fresh     bool
}

// readinessInterval is how often /readyz pings the database at most.
const readinessInterval = time.Second

// databaseReachable pings the store at most once a readinessInterval; calls
// in between, and calls while a ping is under way, get the last answer at
// once.
func (s *Server) databaseReachable(ctx context.Context) readinessAnswer {
	c := &s.readiness
	c.mu.Lock()
	if c.checking || (!c.at.IsZero() && s.cfg.Now().Sub(c.at) < readinessInterval) {
		defer c.mu.Unlock()
		return readinessAnswer{err: c.err, downSince: c.downSince}
	}
	c.checking = true
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.store.Ping(ctx)
	now := s.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checking, c.at, c.err = false, now, err
	switch {
	case err == nil:
		c.downSince = time.Time{}
	case c.downSince.IsZero():
		c.downSince = now
	}
	return readinessAnswer{err: err, downSince: c.downSince, fresh: true}
}
