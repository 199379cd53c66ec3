// Package listener runs the server's HTTP listeners and holds what keeps
// one caller from starving the others: timeouts, a header limit, a cap on
// requests in flight, request ids, TLS that reloads its certificate, and a
// graceful shutdown bounded in time.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits bound what a client can make a listener hold: slow or huge
// requests, idle connections, and too many requests at once.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConcurrent is how many requests the listener handles at once;
	// more get 503 at once. 0 means no cap.
	MaxConcurrent int
}

// Endpoint is one listener and what it serves.
type Endpoint struct {
	Name     string
	Listener net.Listener
	Handler  http.Handler
}

// Serve serves every endpoint under limits until ctx ends or one listener
// fails, then shuts them all down: listeners close at once, requests in
// flight may finish within shutdownTimeout, and the rest are cut. A nil
// cert serves plain HTTP.
func Serve(ctx context.Context, endpoints []Endpoint, limits Limits, cert *Certificate, shutdownTimeout time.Duration, log *slog.Logger) error {
	servers := make([]*http.Server, len(endpoints))
	errc := make(chan error, len(endpoints))
	for i, e := range endpoints {
		srv := &http.Server{
			Handler:           WithRequestID(limitConcurrency(e.Handler, limits.MaxConcurrent)),
			ReadHeaderTimeout: limits.ReadHeaderTimeout,
			ReadTimeout:       limits.ReadTimeout,
			WriteTimeout:      limits.WriteTimeout,
			IdleTimeout:       limits.IdleTimeout,
			MaxHeaderBytes:    limits.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		ln := e.Listener
		if cert != nil {
			srv.TLSConfig = cert.config()
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
		log.Info("shutting down", "drain_timeout", shutdownTimeout.String())
	case failed = <-errc:
		log.Error("listener failed", "err", failed)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
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
