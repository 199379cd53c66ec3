package listener

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// Certificate serves the current TLS key pair and swaps in a new one from
// the same files on reload, so certificates rotate without a restart and
// without dropping connections.
type Certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads a PEM certificate (chain) and its private key.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on failure the previous pair stays.
func (c *Certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS Certificate %s: %w", c.certFile, err)
	}
	c.current.Store(&pair)
	return nil
}

func (c *Certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}

// ReloadOn reloads the Certificate whenever hup fires, logging the outcome.
func (c *Certificate) ReloadOn(hup <-chan os.Signal, log *slog.Logger) {
	for range hup {
		if err := c.reload(); err != nil {
			log.Error("TLS Certificate not reloaded; serving the previous one", "err", err)
			continue
		}
		log.Info("TLS Certificate reloaded", "cert", c.certFile)
	}
}
