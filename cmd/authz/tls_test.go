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
	if got := servedCertificate(t, addr); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatal("the server does not present the configured certificate")
	}
	second := writeSelfSigned(t, certFile, keyFile, 2)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitCertificate(t, addr, second, "after SIGHUP")
}

// servedCertificate is the certificate a new TLS handshake with addr gets.
func servedCertificate(t *testing.T, addr string) *x509.Certificate {
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

func awaitCertificate(t *testing.T, addr string, want *x509.Certificate, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(servedCertificate(t, addr).Raw, want.Raw) {
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate is not served 10 s %s", when)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSCertificateReloadsWhenAMountedSecretChanges: the kubelet renews a
// mounted Secret by writing a new directory and swapping the ..data symlink
// the file names lead through; no signal reaches the server. A pair caught
// halfway (a new certificate beside the old key) keeps the previous one in
// service until the key follows.
func TestTLSCertificateReloadsWhenAMountedSecretChanges(t *testing.T) {
	t.Parallel()
	mount := t.TempDir()
	project := func(version string, serial int64) *x509.Certificate {
		t.Helper()
		dir := filepath.Join(mount, "..v"+version)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cert := writeSelfSigned(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), serial)
		tmp := filepath.Join(mount, "..data_tmp")
		if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
		return cert
	}
	first := project("1", 1)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(mount, name)); err != nil {
			t.Fatal(err)
		}
	}
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--tls-cert", filepath.Join(mount, "tls.crt"),
		"--tls-key", filepath.Join(mount, "tls.key"), "--tls-reload-interval", "100ms")
	addr := strings.TrimPrefix(p.publicURL, "http://")
	if got := servedCertificate(t, addr); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatal("the server does not present the mounted certificate")
	}
	second := project("2", 2)
	awaitCertificate(t, addr, second, "after the Secret changed")

	// Halfway: version 3's certificate with version 2's key.
	dir3 := filepath.Join(mount, "..v3")
	if err := os.Mkdir(dir3, 0o700); err != nil {
		t.Fatal(err)
	}
	third := writeSelfSigned(t, filepath.Join(dir3, "tls.crt"), filepath.Join(dir3, "unused.key"), 3)
	key2, _ := os.ReadFile(filepath.Join(mount, "..v2", "tls.key"))
	if err := os.WriteFile(filepath.Join(dir3, "tls.key"), key2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..v3", filepath.Join(mount, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.output.String(), "TLS Certificate not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("a mismatched pair was not reported:\n%s", p.output)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := servedCertificate(t, addr); !bytes.Equal(got.Raw, second.Raw) {
		t.Fatal("a mismatched pair replaced the working one")
	}
	// Reported once, not at every check.
	time.Sleep(time.Second)
	if n := strings.Count(p.output.String(), "TLS Certificate not reloaded"); n != 1 {
		t.Errorf("the mismatched pair was reported %d times", n)
	}
	if err := os.Rename(filepath.Join(dir3, "unused.key"), filepath.Join(dir3, "tls.key")); err != nil {
		t.Fatal(err)
	}
	awaitCertificate(t, addr, third, "after the key followed")
}

func TestServeRefusesAPlainHTTPPublicURLOutsideDevelopment(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	code, out := runAuthz(t, env, "serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--public-url", "http://auth.example.com")
	if code != 1 || !strings.Contains(out, "is not https") || !strings.Contains(out, "--insecure-http") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// TestServeRefusesToGuessItsPublicURL: with TLS, a public URL made from the
// listener (https://localhost:…) would pass the https rule and put an
// address no gateway can use into every token.
func TestServeRefusesToGuessItsPublicURL(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, 1)
	code, out := runAuthz(t, env, "serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if code != 2 || !strings.Contains(out, "--public-url") {
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
