package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
	"github.com/authz-dev/authz/store/postgres"
)

type serveConfig struct {
	publicAddr      string
	adminAddr       string
	publicURL       string
	databaseURL     string
	kek             string
	logFormat       string
	jwksMaxAge      time.Duration
	cacheTTL        time.Duration
	shutdownTimeout time.Duration
}

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	set := newSettings("serve", getenv, stderr)
	publicAddr := set.String("public-addr", "AUTHZ_PUBLIC_ADDR", ":8080", "public listener: token, JWKS, discovery, health")
	adminAddr := set.String("admin-addr", "AUTHZ_ADMIN_ADDR", "127.0.0.1:8081", "admin API listener")
	publicURL := set.String("public-url", "AUTHZ_PUBLIC_URL", "", "externally visible base URL used in issuer URLs (default: http://<public listener>)")
	databaseURL := set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL; empty runs on an in-memory store for development")
	kek := set.String("kek", "AUTHZ_KEK", "", "key-encryption key: base64 of 32 bytes, or the path of a file holding it (required with a database)")
	logFormat := set.String("log-format", "AUTHZ_LOG_FORMAT", "json", "log format: json or text")
	jwksMaxAge := set.Duration("jwks-max-age", "AUTHZ_JWKS_MAX_AGE", 5*time.Minute, "Cache-Control max-age of JWKS and discovery documents")
	cacheTTL := set.Duration("cache-ttl", "AUTHZ_CACHE_TTL", time.Minute, "longest time a cached issuer or client is trusted without a change notification")
	shutdownTimeout := set.Duration("shutdown-timeout", "AUTHZ_SHUTDOWN_TIMEOUT", 15*time.Second, "how long to drain in-flight requests on SIGTERM")
	if err := set.Parse(args); err != nil {
		return serveConfig{}, err
	}
	c := serveConfig{
		publicAddr:      *publicAddr,
		adminAddr:       *adminAddr,
		publicURL:       strings.TrimRight(*publicURL, "/"),
		databaseURL:     *databaseURL,
		kek:             *kek,
		logFormat:       *logFormat,
		jwksMaxAge:      *jwksMaxAge,
		cacheTTL:        *cacheTTL,
		shutdownTimeout: *shutdownTimeout,
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		return c, fmt.Errorf("--log-format must be json or text, not %q", c.logFormat)
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
	log := newLogger(stderr, cfg.logFormat)
	devMode := cfg.databaseURL == ""
	if devMode {
		log.Warn("DEVELOPMENT MODE: no database URL; issuers, clients and keys live in memory and vanish on exit")
	}
	be, err := openBackend(ctx, cfg.databaseURL, cfg.kek, log)
	if err != nil {
		return err
	}
	defer be.close()
	if err := ensureAllKeys(ctx, be.store, be.keys); err != nil {
		return err
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
	publicURL := cfg.publicURL
	if publicURL == "" {
		publicURL = "http://" + reachableAddr(publicLn.Addr())
	}

	public := issuer.New(issuer.Config{
		PublicURL:      publicURL,
		JWKSMaxAge:     cfg.jwksMaxAge,
		MetadataMaxAge: cfg.jwksMaxAge,
		Logger:         log,
		CacheTTL:       cfg.cacheTTL,
		LoadKeys:       be.keys.Sync,
	}, be.store, be.ring)
	admin := api.New(be.store, be.keys, public, log)

	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go followChanges(watchCtx, be.store, public, be.keys, log)

	var devAdmin api.BootstrapResult
	if devMode {
		if devAdmin, err = api.Bootstrap(ctx, be.store, be.keys); err != nil {
			return err
		}
	}

	servers := []*http.Server{newHTTPServer(public.Handler(), log), newHTTPServer(admin.Handler(), log)}
	listeners := []net.Listener{publicLn, adminLn}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	log.Info("listening", "listener", "public", "addr", publicLn.Addr().String(), "public_url", publicURL)
	log.Info("listening", "listener", "admin", "addr", adminLn.Addr().String())
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

// backend is the store and key machinery every command that touches state
// shares.
type backend struct {
	store store.Store
	ring  *keys.Keyring
	keys  *keys.Manager
	close func()
}

// openBackend opens PostgreSQL (migrating it) with the operator's KEK, or,
// with no database URL, an in-memory store with a KEK made for this run.
func openBackend(ctx context.Context, databaseURL, kekValue string, log *slog.Logger) (*backend, error) {
	be := &backend{ring: keys.NewKeyring(), close: func() {}}
	var kek []byte
	if databaseURL == "" {
		be.store = memory.New()
		kek = make([]byte, keys.KEKSize)
		_, _ = rand.Read(kek)
	} else {
		var err error
		if kek, err = loadKEK(kekValue); err != nil {
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
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		be.close()
		return nil, err
	}
	be.keys = keys.NewManager(be.store, sealer, be.ring)
	return be, nil
}

// ensureAllKeys gives every issuer an active key and loads all keys into the
// keyring before the listeners open, so the first request can sign.
func ensureAllKeys(ctx context.Context, st store.Store, km *keys.Manager) error {
	issuers, err := st.ListIssuers(ctx, store.Page{})
	if err != nil {
		return err
	}
	for _, iss := range issuers {
		if err := km.EnsureActive(ctx, iss.Name, iss.SigningAlgorithm); err != nil {
			return fmt.Errorf("load keys of issuer %q: %w", iss.Name, err)
		}
	}
	return nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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

// loadKEK reads the key-encryption key from base64 text or from a file
// holding base64 text or the raw 32 bytes. Errors never repeat the value.
func loadKEK(value string) ([]byte, error) {
	if kek, ok := decodeKEK([]byte(value)); ok {
		return kek, nil
	}
	content, err := os.ReadFile(value)
	if err != nil {
		return nil, errors.New("--kek is neither base64 of 32 bytes nor a readable file")
	}
	if kek, ok := decodeKEK(content); ok {
		return kek, nil
	}
	if len(content) == keys.KEKSize {
		return content, nil
	}
	return nil, errors.New("the --kek file holds neither base64 of 32 bytes nor 32 raw bytes")
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
