package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
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

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
	"github.com/authz-dev/authz/store/postgres"
)

type serveConfig struct {
	publicAddr         string
	adminAddr          string
	publicURL          string
	databaseURL        string
	kek                string
	logFormat          string
	logLevel           slog.Level
	jwksMaxAge         time.Duration
	cacheTTL           time.Duration
	staleWindow        time.Duration
	keyCheck           time.Duration
	keyPoll            time.Duration
	shutdownTimeout    time.Duration
	limits             httpLimits
	tlsCert, tlsKey    string
	insecureHTTP       bool
	allowPrivateJWKS   bool
	failuresPerClient  int
	failuresPerAddress int
}

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	set := newSettings("serve", getenv, stderr)
	publicAddr := set.String("public-addr", "AUTHZ_PUBLIC_ADDR", ":8080", "public listener: token, JWKS, discovery, health")
	adminAddr := set.String("admin-addr", "AUTHZ_ADMIN_ADDR", "127.0.0.1:8081", "admin API listener")
	publicURL := set.String("public-url", "AUTHZ_PUBLIC_URL", "", "externally visible base URL used in issuer URLs (default: http://<public listener>)")
	databaseURL := set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL; empty runs on an in-memory store for development")
	kek := set.String("kek", "AUTHZ_KEK", "", kekHelp+" (required with a database)")
	logFormat := set.String("log-format", "AUTHZ_LOG_FORMAT", "json", "log format: json or text")
	logLevel := set.String("log-level", "AUTHZ_LOG_LEVEL", "info", "least severe level logged: debug (every token issued), info, warn or error")
	jwksMaxAge := set.Duration("jwks-max-age", "AUTHZ_JWKS_MAX_AGE", 5*time.Minute, "Cache-Control max-age of discovery documents, and of JWKS for issuers with the default key schedule (whose publication lead is twice this plus a minute)")
	cacheTTL := set.Duration("cache-ttl", "AUTHZ_CACHE_TTL", time.Minute, "longest time a cached issuer or client is trusted without a change notification")
	staleWindow := set.Duration("stale-window", "AUTHZ_STALE_WINDOW", 15*time.Minute, "while the database is unreachable, how old cached issuers and clients may grow before token requests are refused")
	keyCheck := set.Duration("key-check-interval", "AUTHZ_KEY_CHECK_INTERVAL", 10*time.Second, "how often the rotating node checks whether keys are due for a transition")
	keyPoll := set.Duration("key-poll-interval", "AUTHZ_KEY_POLL_INTERVAL", 30*time.Second, "how often every node reloads all keys, in case a change notification was lost")
	limits := httpLimits{
		readHeaderTimeout: set.Duration("read-header-timeout", "AUTHZ_READ_HEADER_TIMEOUT", 5*time.Second, "how long a client may take to send request headers (slow-header attacks)"),
		readTimeout:       set.Duration("read-timeout", "AUTHZ_READ_TIMEOUT", 10*time.Second, "how long a client may take to send a whole request"),
		writeTimeout:      set.Duration("write-timeout", "AUTHZ_WRITE_TIMEOUT", 15*time.Second, "how long writing a response may take"),
		idleTimeout:       set.Duration("idle-timeout", "AUTHZ_IDLE_TIMEOUT", 2*time.Minute, "how long an idle keep-alive connection stays open"),
		maxHeaderBytes:    set.Int("max-header-bytes", "AUTHZ_MAX_HEADER_BYTES", 16<<10, "largest request header block, in bytes"),
		maxConcurrent:     set.Int("max-concurrent-requests", "AUTHZ_MAX_CONCURRENT_REQUESTS", 1024, "requests each listener handles at once; more get 503 at once"),
	}
	shutdownTimeout := set.Duration("shutdown-timeout", "AUTHZ_SHUTDOWN_TIMEOUT", 15*time.Second, "how long to drain in-flight requests on SIGTERM")
	tlsCert := set.String("tls-cert", "AUTHZ_TLS_CERT", "", "PEM certificate (chain) file: serve both listeners over TLS; reloaded on SIGHUP")
	tlsKey := set.String("tls-key", "AUTHZ_TLS_KEY", "", "PEM private key file of --tls-cert")
	insecureHTTP := set.Bool("insecure-http", "AUTHZ_INSECURE_HTTP", false, "allow a public URL that is not https outside development mode (tokens and secrets would cross the network in clear)")
	failuresPerClient := set.Int("auth-failures-per-client", "AUTHZ_AUTH_FAILURES_PER_CLIENT", 10, "failed client authentications a minute per client_id before 429 (0: no limit)")
	failuresPerAddress := set.Int("auth-failures-per-address", "AUTHZ_AUTH_FAILURES_PER_ADDRESS", 600, "failed client authentications a minute per source address before 429 (0: no limit); behind a load balancer every caller shares its address")
	allowPrivateJWKS := set.Bool("allow-private-jwks-uri", "AUTHZ_ALLOW_PRIVATE_JWKS_URI", false, "let clients' jwks_uri reach loopback and private addresses over plain http (tests and closed networks only)")
	if err := set.Parse(args); err != nil {
		return serveConfig{}, err
	}
	c := serveConfig{
		publicAddr:         *publicAddr,
		adminAddr:          *adminAddr,
		publicURL:          strings.TrimRight(*publicURL, "/"),
		databaseURL:        *databaseURL,
		kek:                *kek,
		logFormat:          *logFormat,
		jwksMaxAge:         *jwksMaxAge,
		cacheTTL:           *cacheTTL,
		staleWindow:        *staleWindow,
		keyCheck:           *keyCheck,
		keyPoll:            *keyPoll,
		shutdownTimeout:    *shutdownTimeout,
		limits:             limits,
		tlsCert:            *tlsCert,
		tlsKey:             *tlsKey,
		insecureHTTP:       *insecureHTTP,
		allowPrivateJWKS:   *allowPrivateJWKS,
		failuresPerClient:  *failuresPerClient,
		failuresPerAddress: *failuresPerAddress,
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		return c, fmt.Errorf("--log-format must be json or text, not %q", c.logFormat)
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return c, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", *logLevel)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	if c.databaseURL != "" && c.kek == "" {
		return c, errors.New("--kek (or AUTHZ_KEK) is required with a database: generate one with `openssl rand -base64 32`")
	}
	return c, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLeveledLogger(stderr, cfg.logFormat, cfg.logLevel)
	devMode := cfg.databaseURL == ""
	if getenv("GOGC") == "" {
		// Each token allocates a few kilobytes that die at once; the heap
		// stays small, so collecting a quarter as often buys throughput
		// for megabytes. GOGC, when set, still rules.
		debug.SetGCPercent(400)
	}
	if devMode {
		log.Warn("DEVELOPMENT MODE: no database URL; issuers, clients and keys live in memory and vanish on exit")
	}
	be, err := openBackend(ctx, cfg.databaseURL, cfg.kek, keys.DefaultSchedule(cfg.jwksMaxAge), log)
	if err != nil {
		return err
	}
	defer be.close()
	// Every stored key must open now: a missing KEK is a start-up error,
	// not a failure at the first token request.
	if err := be.keys.SyncAll(ctx); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}

	publicLn, err := net.Listen("tcp", cfg.publicAddr)
	if err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.adminAddr)
	if err != nil {
		publicLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	scheme := "http"
	var cert *certificate
	if cfg.tlsCert != "" {
		if cert, err = loadCertificate(cfg.tlsCert, cfg.tlsKey); err != nil {
			publicLn.Close()
			adminLn.Close()
			return err
		}
		scheme = "https"
	}
	publicURL := cfg.publicURL
	if publicURL == "" {
		publicURL = scheme + "://" + reachableAddr(publicLn.Addr())
	}
	if !devMode && !cfg.insecureHTTP && !strings.HasPrefix(publicURL, "https://") {
		publicLn.Close()
		adminLn.Close()
		return fmt.Errorf("the public URL %s is not https: serve TLS (--tls-cert, --tls-key), or set --public-url https://… "+
			"behind a TLS-terminating proxy, or pass --insecure-http to accept tokens and secrets in clear", publicURL)
	}

	mx := newMetrics(be.store)
	public := issuer.New(issuer.Config{
		Metrics:                mx,
		PublicURL:              publicURL,
		MetadataMaxAge:         cfg.jwksMaxAge,
		Logger:                 log,
		CacheTTL:               cfg.cacheTTL,
		StaleWindow:            cfg.staleWindow,
		LoadKeys:               be.keys.Sync,
		AllowPrivateJWKSURI:    cfg.allowPrivateJWKS,
		AuthFailuresPerClient:  cfg.failuresPerClient,
		AuthFailuresPerAddress: cfg.failuresPerAddress,
	}, be.store, be.ring)
	admin := api.New(be.store, be.keys, public, log)

	// Background work stops, and the rotation lock is released, before the
	// store closes.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		stopBackground()
		background.Wait()
	}()
	background.Go(func() { followChanges(bgCtx, be.store, public, be.keys, cfg.keyPoll, log) })
	rotator := keys.NewRotator(be.keys, be.store, cfg.keyCheck, log)
	rotator.OnAdvance = mx.KeysAdvanced
	background.Go(func() { rotator.Run(bgCtx) })
	background.Go(func() { forgetExpiredAssertions(bgCtx, be.store, time.Minute, log) })

	var devAdmin api.BootstrapResult
	if devMode {
		if devAdmin, err = api.Bootstrap(ctx, be.store, be.keys); err != nil {
			return err
		}
	}

	servers := []*http.Server{cfg.limits.server(public.Handler(), log), cfg.limits.server(adminHandler(admin, mx), log)}
	listeners := []net.Listener{publicLn, adminLn}
	errc := make(chan error, len(servers))
	if cert != nil {
		for i := range listeners {
			servers[i].TLSConfig = cert.config()
			listeners[i] = tls.NewListener(listeners[i], servers[i].TLSConfig)
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go cert.reloadOn(hup, log)
	}
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	log.Info("listening", "listener", "public", "addr", publicLn.Addr().String(), "public_url", publicURL)
	log.Info("listening", "listener", "admin", "addr", adminLn.Addr().String(), "tls", cert != nil)
	if devMode {
		printDevBanner(stdout, publicURL, "http://"+reachableAddr(adminLn.Addr()), devAdmin)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "drain_timeout", cfg.shutdownTimeout.String())
	case err := <-errc:
		log.Error("listener failed", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	var shutdownErr error
	for _, srv := range servers {
		shutdownErr = errors.Join(shutdownErr, srv.Shutdown(shutdownCtx))
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	log.Info("stopped")
	return nil
}

// forgetExpiredAssertions deletes used client-assertion ids once they have
// expired: an expired assertion is refused anyway, so its id need not be
// remembered.
func forgetExpiredAssertions(ctx context.Context, st store.Store, interval time.Duration, log *slog.Logger) {
	every(ctx, interval, func(now time.Time) {
		if n, err := st.DeleteExpiredAssertions(ctx, now); err != nil && ctx.Err() == nil {
			log.Warn("forget expired client assertions", "err", err)
		} else if n > 0 {
			log.Debug("forgot expired client assertions", "count", n)
		}
	})
}

// every runs do at each tick of interval until ctx ends.
func every(ctx context.Context, interval time.Duration, do func(now time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			do(now)
		}
	}
}

// backend is the store and key machinery every command that touches state
// shares.
type backend struct {
	store store.Store
	ring  *keys.Keyring
	keys  *keys.Manager
	close func()
}

// openBackend opens PostgreSQL (migrating it) with the operator's KEKs, or,
// with no database URL, an in-memory store with a KEK made for this run.
func openBackend(ctx context.Context, databaseURL, kekValue string, schedule keys.Schedule, log *slog.Logger) (*backend, error) {
	be := &backend{ring: keys.NewKeyring(), close: func() {}}
	var keks [][]byte
	if databaseURL == "" {
		be.store = memory.New()
		kek := make([]byte, keys.KEKSize)
		_, _ = rand.Read(kek)
		keks = [][]byte{kek}
	} else {
		var err error
		if keks, err = loadKEKs(kekValue); err != nil {
			return nil, err
		}
		if err := postgres.Migrate(ctx, databaseURL); err != nil {
			return nil, err
		}
		pg, err := postgres.Open(ctx, databaseURL, log)
		if err != nil {
			return nil, err
		}
		be.store, be.close = pg, pg.Close
	}
	sealer, err := keys.NewSealer(keks[0], keks[1:]...)
	if err != nil {
		be.close()
		return nil, err
	}
	be.keys = keys.NewManager(be.store, sealer, be.ring, schedule, nil)
	return be, nil
}

// adminHandler serves the admin API; behind the same admin authentication,
// the Go profiler at /debug/pprof/; and, for scrapers that cannot fetch
// tokens, Prometheus metrics at /metrics, which hold counts, never secrets:
// keep the admin listener on a private network.
func adminHandler(admin *api.Server, mx *metrics) http.Handler {
	m := http.NewServeMux()
	m.Handle("/metrics", mx.handler())
	m.Handle("/debug/pprof/", admin.RequireAdmin(http.HandlerFunc(pprof.Index)))
	m.Handle("/debug/pprof/cmdline", admin.RequireAdmin(http.HandlerFunc(pprof.Cmdline)))
	m.Handle("/debug/pprof/profile", admin.RequireAdmin(http.HandlerFunc(pprof.Profile)))
	m.Handle("/debug/pprof/symbol", admin.RequireAdmin(http.HandlerFunc(pprof.Symbol)))
	m.Handle("/debug/pprof/trace", admin.RequireAdmin(http.HandlerFunc(pprof.Trace)))
	m.Handle("/", admin.Handler())
	return m
}

// httpLimits bound what a client can make a listener hold: slow or huge
// requests, idle connections, and too many requests at once.
type httpLimits struct {
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout *time.Duration
	maxHeaderBytes, maxConcurrent                             *int
}

func (l httpLimits) server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           withRequestID(limitConcurrency(h, *l.maxConcurrent)),
		ReadHeaderTimeout: *l.readHeaderTimeout,
		ReadTimeout:       *l.readTimeout,
		WriteTimeout:      *l.writeTimeout,
		IdleTimeout:       *l.idleTimeout,
		MaxHeaderBytes:    *l.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// limitConcurrency answers 503 at once when n requests are already being
// handled: under overload, a fast refusal keeps latency bounded for the
// requests that are admitted, and the client's retry finds a less busy node.
func limitConcurrency(h http.Handler, n int) http.Handler {
	if n <= 0 {
		return h
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"The server is at its request limit; retry shortly."}` + "\n"))
		}
	})
}

// reachableAddr turns a wildcard listen address into one a local client can
// dial.
func reachableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

const kekHelp = "key-encryption keys, comma-separated, newest first: each base64 of 32 bytes, or the path of a file holding one per line. New keys are sealed under the first"

// loadKEKs reads the key-encryption keys, newest first: each entry is base64
// text or a file holding base64 lines or 32 raw bytes. Errors never repeat
// a value.
func loadKEKs(value string) ([][]byte, error) {
	var keks [][]byte
	for i, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		if kek, ok := decodeKEK([]byte(entry)); ok {
			keks = append(keks, kek)
			continue
		}
		content, err := os.ReadFile(entry)
		if err != nil {
			return nil, fmt.Errorf("--kek entry %d is neither base64 of 32 bytes nor a readable file", i+1)
		}
		if len(content) == keys.KEKSize {
			keks = append(keks, content)
			continue
		}
		for _, line := range strings.Fields(string(content)) {
			kek, ok := decodeKEK([]byte(line))
			if !ok {
				return nil, fmt.Errorf("the --kek file of entry %d holds a line that is not base64 of 32 bytes", i+1)
			}
			keks = append(keks, kek)
		}
	}
	if len(keks) == 0 {
		return nil, errors.New("--kek holds no key")
	}
	return keks, nil
}

func decodeKEK(text []byte) ([]byte, bool) {
	s := strings.TrimSpace(string(text))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if kek, err := enc.DecodeString(s); err == nil && len(kek) == keys.KEKSize {
			return kek, true
		}
	}
	return nil, false
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

  curl -s -u "$(echo "$CLIENT" | jq -r .client_id):$(echo "$CLIENT" | jq -r .client_secret)" \
    -d grant_type=client_credentials -d scope=read %[1]s/issuers/demo/token

  curl -s %[1]s/issuers/demo/jwks.json

`, publicURL, adminURL, admin.ClientID, admin.ClientSecret)
}
