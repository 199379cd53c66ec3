package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func (a *cli) healthcheckCommand() *cobra.Command {
	var target, certFile string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a running server answers /healthz (the container probe)",
		Long: `healthcheck probes a running server's /healthz, for containers without curl.
With --tls-cert (the same file, and $AUTHZ_TLS_CERT, the server reads) it
probes https://127.0.0.1:8080/healthz and accepts exactly that certificate,
since the loopback address it dials is seldom a name the certificate holds.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hc := &http.Client{Timeout: 3 * time.Second}
			if certFile != "" {
				pinned, err := pinnedTLS(certFile)
				if err != nil {
					return err
				}
				hc.Transport = &http.Transport{TLSClientConfig: pinned}
			}
			if target == "" {
				target = "http://127.0.0.1:8080/healthz"
				if certFile != "" {
					target = "https://127.0.0.1:8080/healthz"
				}
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, target, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s", target, resp.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "health endpoint to probe (default http://127.0.0.1:8080/healthz, https:// when --tls-cert is set)")
	bindEnv(f, "url", "AUTHZ_HEALTHCHECK_URL")
	f.StringVar(&certFile, "tls-cert", "", "the server's own certificate: probe over https and accept only this certificate")
	bindEnv(f, "tls-cert", "AUTHZ_TLS_CERT")
	return cmd
}

// pinnedTLS accepts exactly the server certificate in certFile. The probe
// runs beside the server and dials it by loopback address, which the
// certificate seldom names, so name and chain checks would refuse a
// correct server; the certificate itself is the stronger check.
func pinnedTLS(certFile string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read TLS certificate: %w", err)
	}
	leaf, _ := pem.Decode(pemBytes)
	if leaf == nil || leaf.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf.Bytes) {
				return fmt.Errorf("the server does not present the certificate in %s", certFile)
			}
			return nil
		},
	}, nil
}
