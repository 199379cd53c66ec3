// Package listener runs the server's HTTP listeners and holds what keeps
// one caller from starving the others: timeouts, a header limit, a cap on
// requests in flight, request ids, TLS that reloads its certificate, and a
// graceful shutdown bounded in time.
package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"
)

// Limits bound what a client can make a listener hold: slow or huge
// requests, idle connections, and too many requests or connections at once.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConcurrent is how many requests a listener handles at once; more
	// get 503 at once. A request counts only once its body has arrived.
	// 0 means no cap.
	MaxConcurrent int
	// MaxConnsPerAddress bounds the connections one caller may hold open
	// on a listener (an IPv6 caller is its /64); trusted proxies are
	// exempt. 0 means no cap.
	MaxConnsPerAddress int
}

// Refusal writes one of the listener's own refusals (413, 503) in the
// protocol shape of the endpoint.
type Refusal func(w http.ResponseWriter, status int, reason string)

// Endpoint is one listener and what it serves.
type Endpoint struct {
	Name     string
	Listener net.Listener
	Handler  http.Handler
	// MaxBodyBytes bounds a request body. Bodies are read whole before a
	// request counts against MaxConcurrent.
	MaxBodyBytes int64
	// OwnBodyPaths are paths whose handler reads the body itself, under a
	// bound of its own, once it has authenticated the caller (a realm
	// import, far larger than MaxBodyBytes). A stranger's body there is
	// refused unread, so it holds a slot no longer than any refusal.
	OwnBodyPaths []string
	// UnlimitedPaths are answered to GET and HEAD even at MaxConcurrent:
	// the liveness probe, whose answer is constant and cheap. Refused under load, it
	// would have the platform restart a busy but healthy node, dropping
	// every request the node holds, just when capacity is short.
	UnlimitedPaths []string
	// Refuse writes the listener's refusals; nil means RFC 6749's JSON
	// error shape.
	Refuse Refusal
	// Observe, when set, wraps everything the listener answers, its own
	// refusals (413, 503) included, so that metrics and traces see them.
	Observe func(http.Handler) http.Handler
}

// Config is what every listener shares.
type Config struct {
	Limits  Limits
	Proxies TrustedProxies
	// Certificate, when set, serves TLS.
	Certificate     *Certificate
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Serve serves every endpoint until ctx ends or one listener fails, then
// shuts them all down: listeners close at once, requests in flight may
// finish within the shutdown timeout, and the rest are cut.
func Serve(ctx context.Context, cfg Config, endpoints ...Endpoint) error {
	log := cfg.Logger
	servers := make([]*http.Server, len(endpoints))
	errc := make(chan error, len(endpoints))
	for i, e := range endpoints {
		refuse := e.Refuse
		if refuse == nil {
			refuse = oauthRefusal
		}
		handler := admitBody(limitConcurrency(e.Handler, cfg.Limits.MaxConcurrent, e.UnlimitedPaths, refuse), e.MaxBodyBytes, e.OwnBodyPaths, refuse)
		if e.Observe != nil {
			handler = e.Observe(handler)
		}
		srv := &http.Server{
			Handler:           WithRequestID(handler),
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			ReadTimeout:       cfg.Limits.ReadTimeout,
			WriteTimeout:      cfg.Limits.WriteTimeout,
			IdleTimeout:       cfg.Limits.IdleTimeout,
			MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		ln := capPerAddress(e.Listener, cfg.Limits.MaxConnsPerAddress, cfg.Proxies.trusts)
		if cfg.Certificate != nil {
			srv.TLSConfig = cfg.Certificate.config()
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		servers[i] = srv
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", e.Name, err)
			}
		}()
	}
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "drain_timeout", cfg.ShutdownTimeout.String())
	case failed = <-errc:
		log.Error("listener failed", "err", failed)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	var shutdownErr error
	for _, srv := range servers {
		shutdownErr = errors.Join(shutdownErr, srv.Shutdown(shutdownCtx))
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return failed
}

// oauthRefusal writes a refusal as RFC 6749 §5.2 JSON.
func oauthRefusal(w http.ResponseWriter, status int, reason string) {
	code := "invalid_request"
	if status == http.StatusServiceUnavailable {
		code = "temporarily_unavailable"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": reason})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// admitBody reads a request's body whole, up to max bytes, before the
// request competes for a slot. A caller that sends its body slowly holds a
// connection until the read timeout, which the per-address cap bounds, but
// never one of the slots every caller shares.
func admitBody(h http.Handler, max int64, ownBodyPaths []string, refuse Refusal) http.Handler {
	if max <= 0 {
		return h
	}
	tooLarge := fmt.Sprintf("The request body exceeds %d bytes.", max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || slices.Contains(ownBodyPaths, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			refuse(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		switch {
		case err != nil:
			refuse(w, http.StatusBadRequest, "The request body could not be read in time.")
			return
		case int64(len(body)) > max:
			refuse(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// limitConcurrency answers 503 at once when n requests are already being
// handled: under overload, a fast refusal keeps latency bounded for the
// requests that are admitted, and the client's retry finds a less busy node.
func limitConcurrency(h http.Handler, n int, unlimited []string, refuse Refusal) http.Handler {
	if n <= 0 {
		return h
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && slices.Contains(unlimited, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			refuse(w, http.StatusServiceUnavailable, "The server is at its request limit; retry shortly.")
		}
	})
}

// ReachableAddr turns a wildcard listen address into one a local client can
// dial.
func ReachableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
