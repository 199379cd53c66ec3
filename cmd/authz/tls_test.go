package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and
// returns the certificate.
func writeSelfSigned(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "authz test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeSelfSigned(t, certFile, keyFile, 1)
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--tls-cert", certFile, "--tls-key", keyFile)
	addr := strings.TrimPrefix(p.publicURL, "http://")
	if !strings.HasPrefix(p.advertisedURL, "https://") {
		t.Fatalf("advertised URL %s is not https", p.advertisedURL)
	}
	served := func() *x509.Certificate {
		t.Helper()
		// Fresh connections each time: a reload affects new handshakes.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz over TLS: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0]
	}
	if got := served(); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatal("the server does not present the configured certificate")
	}
	second := writeSelfSigned(t, certFile, keyFile, 2)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Equal(served().Raw, second.Raw) {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate is not served 5 s after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeRefusesAPlainHTTPPublicURLOutsideDevelopment(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	code, out := runAuthz(t, env, "serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(out, "is not https") || !strings.Contains(out, "--insecure-http") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestHealthcheckProbesATLSListenerByItsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, 1)
	otherCert := filepath.Join(dir, "other.pem")
	writeSelfSigned(t, otherCert, filepath.Join(dir, "other-key.pem"), 2)
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--tls-cert", certFile, "--tls-key", keyFile)
	healthz := "https://" + strings.TrimPrefix(p.publicURL, "http://") + "/healthz"

	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"the server's certificate as a flag", nil, []string{"--url", healthz, "--tls-cert", certFile}, 0, ""},
		// A container sets AUTHZ_TLS_CERT once, for serve and healthcheck.
		{"the server's certificate from the environment", []string{"AUTHZ_TLS_CERT=" + certFile}, []string{"--url", healthz}, 0, ""},
		{"another certificate", nil, []string{"--url", healthz, "--tls-cert", otherCert}, 1, "does not present the certificate"},
		{"no pin: the chain is checked against the system roots", nil, []string{"--url", healthz}, 1, "certificate"},
		{"plain http to a TLS listener", nil, []string{"--url", strings.Replace(healthz, "https:", "http:", 1)}, 1, "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runAuthz(t, append([]string{"AUTHZ_TLS_CERT="}, tc.env...), append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d, want %d with %q; output:\n%s", code, tc.wantCode, tc.wantOut, out)
			}
		})
	}
}
