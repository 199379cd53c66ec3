package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keycloak"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/listener"
	"github.com/authz-dev/authz/metrics"
	"github.com/authz-dev/authz/route"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/tracing"
)

// serveConfig is `authz serve`'s configuration, from flags and the
// environment.
type serveConfig struct {
	publicAddr         string
	adminAddr          string
	publicURL          string
	database           databaseFlags
	logFormat          string
	logLevel           string
	jwksMaxAge         time.Duration
	cacheTTL           time.Duration
	staleWindow        time.Duration
	keyCheck           time.Duration
	keyPoll            time.Duration
	shutdownTimeout    time.Duration
	databaseWait       time.Duration
	limits             listener.Limits
	tlsCert, tlsKey    string
	tlsReloadInterval  time.Duration
	insecureHTTP       bool
	allowPrivateJWKS   bool
	failuresPerClient  int
	failuresPerAddress int
	trustedProxies     string
	maxAssertionLife   time.Duration
	issuerCacheSize    int
	clientCacheSize    int
}

func (a *cli) serveCommand() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (without a database URL: in memory, for development)",
		Long: `serve runs the public listener (token endpoints, JWKS, discovery, health) and
the admin listener (admin API, metrics, profiler).

With --database-url it keeps everything in PostgreSQL, migrating it first,
and needs --kek. Without one it runs in memory for development: everything
vanishes on exit, and it prints an admin client's credentials to get started.`,
		Example: `  authz serve
  AUTHZ_DATABASE_URL=postgres://authz@db/authz AUTHZ_KEK=$(cat kek) AUTHZ_PUBLIC_URL=https://auth.example.com authz serve`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.serve(cmd.Context(), c) },
	}
	f := cmd.Flags()
	str := func(p *string, name, env, def, help string) {
		f.StringVar(p, name, def, help)
		bindEnv(f, name, env)
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, help string) {
		f.DurationVar(p, name, def, help)
		bindEnv(f, name, env)
	}
	num := func(p *int, name, env string, def int, help string) {
		f.IntVar(p, name, def, help)
		bindEnv(f, name, env)
	}
	flag := func(p *bool, name, env, help string) {
		f.BoolVar(p, name, false, help)
		bindEnv(f, name, env)
	}
	str(&c.publicAddr, "public-addr", "AUTHZ_PUBLIC_ADDR", ":8080", "public listener: token, JWKS, discovery, health")
	str(&c.adminAddr, "admin-addr", "AUTHZ_ADMIN_ADDR", "127.0.0.1:8081", "admin API listener")
	str(&c.publicURL, "public-url", "AUTHZ_PUBLIC_URL", "", "externally visible base URL of issuer URLs (default: http://<public listener>)")
	c.database.register(cmd, " (required with a database)")
	str(&c.logFormat, "log-format", "AUTHZ_LOG_FORMAT", "json", "log format: json or text")
	str(&c.logLevel, "log-level", "AUTHZ_LOG_LEVEL", "info", "least severe level logged: debug (every token issued), info, warn or error")
	dur(&c.jwksMaxAge, "jwks-max-age", "AUTHZ_JWKS_MAX_AGE", 5*time.Minute, "Cache-Control max-age of discovery documents, and of JWKS for issuers with the default key schedule (whose publication lead is twice this plus a minute)")
	dur(&c.cacheTTL, "cache-ttl", "AUTHZ_CACHE_TTL", time.Minute, "longest time a cached issuer or client is trusted without a change notification")
	dur(&c.staleWindow, "stale-window", "AUTHZ_STALE_WINDOW", 15*time.Minute, "while the database is unreachable, how old cached issuers and clients may grow before token requests are refused")
	dur(&c.keyCheck, "key-check-interval", "AUTHZ_KEY_CHECK_INTERVAL", 10*time.Second, "how often the rotating node checks whether keys are due for a transition")
	dur(&c.keyPoll, "key-poll-interval", "AUTHZ_KEY_POLL_INTERVAL", 30*time.Second, "how often every node reads which issuers' keys were written since the last time, in case a change notification was lost")
	num(&c.issuerCacheSize, "issuer-cache-size", "AUTHZ_ISSUER_CACHE_SIZE", issuer.DefaultIssuerCacheSize, "issuers each node keeps ready in memory, with their keys (about 4 KiB each with an ES256 key and a client); others load on first use")
	num(&c.clientCacheSize, "client-cache-size", "AUTHZ_CLIENT_CACHE_SIZE", issuer.DefaultClientCacheSize, "clients each node keeps in memory (under 1 KiB each); others load on first use")
	dur(&c.limits.ReadHeaderTimeout, "read-header-timeout", "AUTHZ_READ_HEADER_TIMEOUT", 5*time.Second, "how long a client may take to send request headers (slow-header attacks)")
	dur(&c.limits.ReadTimeout, "read-timeout", "AUTHZ_READ_TIMEOUT", 10*time.Second, "how long a client may take to send a whole request")
	dur(&c.limits.WriteTimeout, "write-timeout", "AUTHZ_WRITE_TIMEOUT", 15*time.Second, "how long writing a response may take")
	dur(&c.limits.IdleTimeout, "idle-timeout", "AUTHZ_IDLE_TIMEOUT", 2*time.Minute, "how long an idle keep-alive connection stays open")
	num(&c.limits.MaxHeaderBytes, "max-header-bytes", "AUTHZ_MAX_HEADER_BYTES", 16<<10, "largest request header block, in bytes")
	num(&c.limits.MaxConcurrent, "max-concurrent-requests", "AUTHZ_MAX_CONCURRENT_REQUESTS", 1024, "requests each listener handles at once, counted once their body has arrived; more get 503 at once")
	num(&c.limits.MaxConnsPerAddress, "max-connections-per-address", "AUTHZ_MAX_CONNECTIONS_PER_ADDRESS", 256, "connections one caller (an IPv4 address or an IPv6 /64) may hold open on a listener; more are closed at once; trusted proxies are exempt (0: no limit)")
	str(&c.trustedProxies, "trusted-proxies", "AUTHZ_TRUSTED_PROXIES", "", "comma-separated CIDR prefixes of load balancers and proxies whose X-Forwarded-For is believed: behind them, the caller is the right-most address they did not add")
	dur(&c.databaseWait, "database-wait", "AUTHZ_DATABASE_WAIT", time.Minute, "how long start-up waits for an unreachable database, retrying with a backoff of up to 5s (0: not at all)")
	dur(&c.shutdownTimeout, "shutdown-timeout", "AUTHZ_SHUTDOWN_TIMEOUT", 15*time.Second, "how long to drain in-flight requests on SIGTERM")
	str(&c.tlsCert, "tls-cert", "AUTHZ_TLS_CERT", "", "PEM certificate (chain) file: serve both listeners over TLS; reloaded when it changes and on SIGHUP")
	str(&c.tlsKey, "tls-key", "AUTHZ_TLS_KEY", "", "PEM private key file of --tls-cert")
	dur(&c.tlsReloadInterval, "tls-reload-interval", "AUTHZ_TLS_RELOAD_INTERVAL", time.Minute, "how often to check whether the --tls-cert and --tls-key files changed, and load them if so (a renewed Kubernetes Secret; 0: on SIGHUP only)")
	flag(&c.insecureHTTP, "insecure-http", "AUTHZ_INSECURE_HTTP", "allow a public URL that is not https outside development mode (tokens and secrets would cross the network in clear)")
	num(&c.failuresPerClient, "auth-failures-per-client", "AUTHZ_AUTH_FAILURES_PER_CLIENT", 10, "failed client authentications a minute per client_id and source address before 429 (0: no limit)")
	num(&c.failuresPerAddress, "auth-failures-per-address", "AUTHZ_AUTH_FAILURES_PER_ADDRESS", 600, "failed client authentications and unknown issuer names a minute per source address before 429 (0: no limit); see --trusted-proxies")
	dur(&c.maxAssertionLife, "max-assertion-lifetime", "AUTHZ_MAX_ASSERTION_LIFETIME", time.Hour, "how far ahead a client assertion's exp may be (private_key_jwt); each jti is kept until then")
	flag(&c.allowPrivateJWKS, "allow-private-jwks-uri", "AUTHZ_ALLOW_PRIVATE_JWKS_URI", "let clients' jwks_uri reach loopback and private addresses over plain http (tests and closed networks only)")
	return cmd
}

// maxDatabaseBackoff caps the pause between tries to reach the database
// at start-up.
const maxDatabaseBackoff = 5 * time.Second

// retryWhileUnavailable runs try until it succeeds, fails for a reason
// other than an unreachable database, or wait has passed: a container
// platform may start authz before PostgreSQL accepts connections. Each
// retry is logged.
func retryWhileUnavailable(ctx context.Context, wait time.Duration, log *slog.Logger, try func() error) error {
	deadline := time.Now().Add(wait)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || !errors.Is(err, store.ErrUnavailable) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		log.Warn("database unreachable; retrying", "attempt", attempt, "retry_in", backoff.String(), "waited_up_to", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxDatabaseBackoff)
	}
}

// check finishes the configuration once flags and environment are read.
func (c *serveConfig) check() (slog.Level, error) {
	c.publicURL = strings.TrimRight(c.publicURL, "/")
	var level slog.Level
	if c.logFormat != "json" && c.logFormat != "text" {
		return level, usagef("--log-format must be json or text, not %q", c.logFormat)
	}
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return level, usagef("--log-level must be debug, info, warn or error, not %q", c.logLevel)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return level, usagef("--tls-cert and --tls-key go together")
	}
	if c.database.url != "" && c.database.kek == "" {
		return level, usagef("--kek (or $AUTHZ_KEK) is required with a database: generate one with `openssl rand -base64 32`")
	}
	// Every token's iss and every issuer URL start with the public URL: one
	// made from the listener (https://localhost:8080) would have gateways
	// elsewhere reject every token, so outside development mode and tests
	// (--insecure-http) it must be said.
	if c.database.url != "" && c.publicURL == "" && !c.insecureHTTP {
		return level, usagef("--public-url (or $AUTHZ_PUBLIC_URL) is required with a database: the https URL gateways and clients reach this server at")
	}
	return level, nil
}

// proxies reads --trusted-proxies.
func (c *serveConfig) proxies() (listener.TrustedProxies, error) {
	p, err := listener.ParseTrustedProxies(c.trustedProxies)
	if err != nil {
		return nil, usagef("--trusted-proxies: %v", err)
	}
	return p, nil
}

func (a *cli) serve(ctx context.Context, cfg serveConfig) error {
	level, err := cfg.check()
	if err != nil {
		return err
	}
	proxies, err := cfg.proxies()
	if err != nil {
		return err
	}
	log := newLogger(a.stderr, cfg.logFormat, level)
	devMode := cfg.database.url == ""
	build := currentBuild()
	log.Info("starting", "version", build.Version, "commit", build.Commit, "built", build.Date, "go", build.GoVersion)
	if a.getenv("GOGC") == "" {
		// Each token allocates a few kilobytes that die at once; the heap
		// stays small, so collecting a quarter as often buys throughput
		// for megabytes. GOGC, when set, still rules.
		debug.SetGCPercent(400)
	}
	if devMode {
		log.Warn("DEVELOPMENT MODE: no database URL; issuers, clients and keys live in memory and vanish on exit")
	}
	tr, err := tracing.Setup(ctx, a.getenv, build.Version)
	if err != nil {
		return err
	}
	defer func() {
		// Spans still queued get a few seconds to reach the collector.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(flushCtx); err != nil {
			log.Warn("tracing: spans lost at shutdown", "err", err)
		}
	}()
	if tr.On() {
		log.Info("tracing: exporting spans over OTLP/HTTP as the OTEL_* environment says")
	}
	var be *backend
	err = retryWhileUnavailable(ctx, cfg.databaseWait, log, func() error {
		var err error
		be, err = openBackend(ctx, cfg.database.url, cfg.database.kek, keys.DefaultSchedule(cfg.jwksMaxAge), cfg.issuerCacheSize, log, postgres.WithTracing(tr.Provider()))
		return err
	})
	if err != nil {
		return err
	}
	defer be.close()
	// Keys load per issuer on first use, but a missing KEK is a start-up
	// error, not a failure at some issuer's first token request.
	if err := be.keys.CheckKEKs(ctx); err != nil {
		return fmt.Errorf("open signing keys: %w", err)
	}
	// Polls for written keys begin here, before any is loaded.
	if err := be.keys.InvalidateChanged(ctx); err != nil {
		return fmt.Errorf("read where key polls begin: %w", err)
	}

	publicLn, err := net.Listen("tcp", cfg.publicAddr)
	if err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	defer publicLn.Close()
	adminLn, err := net.Listen("tcp", cfg.adminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer adminLn.Close()
	scheme := "http"
	var cert *listener.Certificate
	if cfg.tlsCert != "" {
		if cert, err = listener.LoadCertificate(cfg.tlsCert, cfg.tlsKey); err != nil {
			return err
		}
		scheme = "https"
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go cert.Watch(ctx, hup, cfg.tlsReloadInterval, log)
	}
	publicURL := cfg.publicURL
	if publicURL == "" {
		publicURL = scheme + "://" + listener.ReachableAddr(publicLn.Addr())
	}
	if !devMode && !cfg.insecureHTTP && !strings.HasPrefix(publicURL, "https://") {
		return fmt.Errorf("the public URL %s is not https: serve TLS (--tls-cert, --tls-key), or set --public-url https://… "+
			"behind a TLS-terminating proxy, or pass --insecure-http to accept tokens and secrets in clear", publicURL)
	}

	mx := metrics.New(metrics.Build{Version: build.Version, Commit: build.Commit, GoVersion: build.GoVersion}, be.failedQueries)
	public := issuer.New(issuer.Config{
		Metrics:                mx,
		Version:                build.Version,
		PublicURL:              publicURL,
		MetadataMaxAge:         cfg.jwksMaxAge,
		Logger:                 log,
		CacheTTL:               cfg.cacheTTL,
		StaleWindow:            cfg.staleWindow,
		IssuerCacheSize:        cfg.issuerCacheSize,
		ClientCacheSize:        cfg.clientCacheSize,
		AllowPrivateJWKSURI:    cfg.allowPrivateJWKS,
		AuthFailuresPerClient:  cfg.failuresPerClient,
		AuthFailuresPerAddress: cfg.failuresPerAddress,
		Identify:               proxies.Identify,
		MaxAssertionLifetime:   cfg.maxAssertionLife,
	}, be.store, be.keys)
	mx.KeyCache(func() (uint64, uint64) { st := be.keys.CacheStats(); return st.Hits, st.Misses })
	mx.CacheEntries(public.CacheEntries())
	mx.CacheEntries(map[string]func() int{"keys": func() int { return be.keys.CacheStats().Entries }})
	admin := api.New(be.store, be.keys, public, log)
	kc := keycloak.New(admin, public, log)

	// Background work stops, and the rotation lock is released, before the
	// store closes.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		stopBackground()
		background.Wait()
	}()
	rotator := keys.NewRotator(be.keys, be.store, cfg.keyCheck, log)
	rotator.OnAdvance = mx.KeysAdvanced
	background.Go(func() { public.Follow(bgCtx, be.store, be.keys, cfg.keyPoll) })
	background.Go(func() { rotator.Run(bgCtx) })
	background.Go(func() { public.ForgetExpiredAssertions(bgCtx, time.Minute) })

	var devAdmin api.BootstrapResult
	if devMode {
		if devAdmin, err = api.Bootstrap(ctx, be.store, be.keys); err != nil {
			return err
		}
	}
	log.Info("listening", "listener", "public", "addr", publicLn.Addr().String(), "public_url", publicURL)
	log.Info("listening", "listener", "admin", "addr", adminLn.Addr().String(), "tls", cert != nil)
	if devMode {
		printDevBanner(a.stdout, publicURL, scheme+"://"+listener.ReachableAddr(adminLn.Addr()), devAdmin)
	}
	// Metrics and traces see every answer, the listeners' own refusals too.
	observe := func(name string, known []route.Known) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return tr.Handler(name, mx.Instrument(name, known, h)) }
	}
	adminMux, adminRoutes := adminHandler(admin, mx)
	err = listener.Serve(ctx, listener.Config{Limits: cfg.limits, Proxies: proxies, Certificate: cert, ShutdownTimeout: cfg.shutdownTimeout, Logger: log},
		// The probes answer even at the request limit: a busy node that
		// failed them would be restarted or taken out of the load balancer
		// just when capacity is short. Neither costs a query of its own.
		listener.Endpoint{Name: "public", Listener: publicLn, Handler: kc.Around(public.Handler()), MaxBodyBytes: issuer.DefaultMaxRequestBytes,
			UnlimitedPaths: []string{"/healthz", "/readyz"}, Observe: observe("public", append(public.Routes(), kc.Routes()...))},
		listener.Endpoint{Name: "admin", Listener: adminLn, Handler: adminMux,
			MaxBodyBytes: api.MaxBodyBytes, OwnBodyPaths: []string{api.ImportPath}, Refuse: api.Refuse, Observe: observe("admin", adminRoutes)},
	)
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// adminHandler serves the admin API; behind the same admin authentication,
// the Go profiler at /debug/pprof/; and, for scrapers that cannot fetch
// tokens, Prometheus metrics at /metrics, which hold counts, never secrets:
// keep the admin listener on a private network.
func adminHandler(admin *api.Server, mx *metrics.Metrics) (http.Handler, []route.Known) {
	m := http.NewServeMux()
	known := admin.Routes()
	for _, rt := range []struct {
		pattern string
		handler http.Handler
	}{
		{"/metrics", mx.Handler()},
		{"/debug/pprof/", admin.RequireAdmin(http.HandlerFunc(pprof.Index))},
		{"/debug/pprof/cmdline", admin.RequireAdmin(http.HandlerFunc(pprof.Cmdline))},
		{"/debug/pprof/profile", admin.RequireAdmin(http.HandlerFunc(pprof.Profile))},
		{"/debug/pprof/symbol", admin.RequireAdmin(http.HandlerFunc(pprof.Symbol))},
		{"/debug/pprof/trace", admin.RequireAdmin(http.HandlerFunc(pprof.Trace))},
	} {
		m.Handle(rt.pattern, route.Named(rt.pattern, rt.handler))
		known = append(known, route.Known{Method: http.MethodGet, Template: rt.pattern})
	}
	m.Handle("/", admin.Handler())
	return m, known
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(listener.WithRequestIDs(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(listener.WithRequestIDs(slog.NewTextHandler(w, opts)))
}

func printDevBanner(w io.Writer, publicURL, adminURL string, admin api.BootstrapResult) {
	fmt.Fprintf(w, `
################################################################################
#  DEVELOPMENT MODE: no --database-url, so everything lives in memory.         #
#  Issuers, clients and keys vanish when this process stops, and the           #
#  key-encryption key was generated for this run. Do not use in production.    #
################################################################################

Admin client of this run (system issuer, scope authz:admin):
  client_id:     %[3]s
  client_secret: %[4]s

Try it (paste into another shell; needs curl and jq):

  ADMIN_TOKEN=$(curl -s -u '%[3]s:%[4]s' -d grant_type=client_credentials \
    %[1]s/issuers/system/token | jq -r .access_token)

  curl -s -X PUT %[2]s/admin/v1/issuers/demo -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"availableScopes":["read","write"],"audience":"https://api.example.com"}'

  CLIENT=$(curl -s -X POST %[2]s/admin/v1/issuers/demo/clients -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"demo client","scopes":["read"]}')

  curl -s -u "$(echo "$CLIENT" | jq -r .clientId):$(echo "$CLIENT" | jq -r .clientSecret)" \
    -d grant_type=client_credentials -d scope=read %[1]s/issuers/demo/token

  curl -s %[1]s/issuers/demo/jwks.json

Or with the CLI:

  authz login --admin-url %[2]s --public-url %[1]s --client-id '%[3]s' --client-secret '%[4]s'

`, publicURL, adminURL, admin.ClientID, admin.ClientSecret)
}
