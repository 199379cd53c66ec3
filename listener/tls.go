package listener

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Certificate serves the current TLS key pair and swaps in a new one from
// the same files on reload, so certificates rotate without a restart and
// without dropping connections.
type Certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
	// loaded is the digest of the files behind current; failed, of the
	// last pair that did not load. Only Watch's goroutine touches them
	// once it runs.
	loaded, failed []byte
}

// LoadCertificate reads a PEM certificate (chain) and its private key.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on failure the previous pair stays, and
// failed remembers what did not load.
func (c *Certificate) reload() error {
	certPEM, keyPEM, err := c.read()
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		c.failed = digest(certPEM, keyPEM)
		return fmt.Errorf("load TLS Certificate %s: %w", c.certFile, err)
	}
	c.current.Store(&pair)
	c.loaded = digest(certPEM, keyPEM)
	return nil
}

// maxPEMBytes bounds what is read of either file.
const maxPEMBytes = 1 << 20

func (c *Certificate) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readBounded(c.certFile); err != nil {
		return nil, nil, fmt.Errorf("load TLS Certificate: %w", err)
	}
	if keyPEM, err = readBounded(c.keyFile); err != nil {
		return nil, nil, fmt.Errorf("load TLS Certificate key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPEMBytes)
	}
	return b, nil
}

// changed says whether the files differ from the pair being served and
// from the last pair that failed to load (reported once, not at every
// check). A file that cannot be read counts as unchanged: the next check
// tries again.
func (c *Certificate) changed() bool {
	certPEM, keyPEM, err := c.read()
	if err != nil {
		return false
	}
	d := digest(certPEM, keyPEM)
	return !bytes.Equal(d, c.loaded) && !bytes.Equal(d, c.failed)
}

func digest(certPEM, keyPEM []byte) []byte {
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	return h.Sum(nil)
}

func (c *Certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}

// Watch reloads the Certificate whenever hup fires and, every interval
// (0: never), when its files have changed: Kubernetes and cert-manager
// replace a mounted Secret's files without signalling the process. A pair
// that does not load (a renewal caught halfway through, with the new
// certificate beside the old key) leaves the previous one in service and is
// tried again at the next check. Watch returns when ctx ends.
func (c *Certificate) Watch(ctx context.Context, hup <-chan os.Signal, interval time.Duration, log *slog.Logger) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick:
			if !c.changed() {
				continue
			}
		}
		err := c.reload()
		if err != nil {
			// Perhaps a renewal caught between writing its two files:
			// look once more before reporting it.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			err = c.reload()
		}
		if err != nil {
			log.Error("TLS Certificate not reloaded; serving the previous one", "err", err)
			continue
		}
		log.Info("TLS Certificate reloaded", "cert", c.certFile)
	}
}
