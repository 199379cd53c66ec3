package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// certificate serves the current TLS key pair and swaps in a new one from
// the same files on reload, so certificates rotate without a restart and
// without dropping connections.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on failure the previous pair stays.
func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s: %w", c.certFile, err)
	}
	c.current.Store(&pair)
	return nil
}

func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}

// reloadOn reloads the certificate whenever hup fires, logging the outcome.
func (c *certificate) reloadOn(hup <-chan os.Signal, log *slog.Logger) {
	for range hup {
		if err := c.reload(); err != nil {
			log.Error("TLS certificate not reloaded; serving the previous one", "err", err)
			continue
		}
		log.Info("TLS certificate reloaded", "cert", c.certFile)
	}
}
