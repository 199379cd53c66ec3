package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowTokenRequest opens a connection to the public listener and sends a
// token request whose body stops halfway: the server is now handling it.
// finish sends the rest and returns the response.
func slowTokenRequest(t *testing.T, p *process, id, secret string) (finish func() *http.Response) {
	t.Helper()
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.publicURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest(http.MethodPost, p.publicURL+"/issuers/payments/token", strings.NewReader(body))
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), req.Host, len(body))
	for _, name := range []string{"Authorization", "Content-Type"} {
		fmt.Fprintf(&head, "%s: %s\r\n", name, req.Header.Get(name))
	}
	head.WriteString("\r\n")
	half := len(body) / 2
	if _, err := conn.Write([]byte(head.String() + body[:half])); err != nil {
		t.Fatal(err)
	}
	return func() *http.Response {
		t.Helper()
		if _, err := conn.Write([]byte(body[half:])); err != nil {
			t.Fatalf("finish the request: %v", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read the response: %v", err)
		}
		return resp
	}
}

func TestSIGTERMDrainsARequestInFlightAndRefusesNewConnections(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--shutdown-timeout", "20s")
	id, secret := newPaymentsClient(t, p)
	finish := slowTokenRequest(t, p, id, secret)
	// The server reads the head of a request before it counts as in flight.
	time.Sleep(200 * time.Millisecond)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.publicURL, "http://"), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the public listener still accepts connections 10 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-p.exited:
		t.Fatalf("the server exited with a request in flight: %v\n%s", p.exitErr, p.output)
	case <-time.After(500 * time.Millisecond):
	}

	resp := finish()
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("the drained request: %d %v", resp.StatusCode, err)
	}
	runLog.remember("an access token", tok.AccessToken)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Fatalf("exit after drain: %v\n%s", p.exitErr, p.output)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not exit after its last request")
	}
	t.Logf("in-flight request answered %d after SIGTERM; new connections refused; exit 0", resp.StatusCode)
}

func TestSIGTERMDrainIsBoundedByTheShutdownTimeout(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--shutdown-timeout", "1s", "--read-timeout", "60s")
	id, secret := newPaymentsClient(t, p)
	_ = slowTokenRequest(t, p, id, secret) // never finished
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("a stuck request kept the server up 20 s past a 1 s shutdown timeout")
	}
	if p.exitErr == nil || !strings.Contains(p.output.String(), "shutdown") {
		t.Fatalf("a drain cut short should exit non-zero and say so; exit %v\n%s", p.exitErr, p.output)
	}
	t.Logf("stuck request abandoned; exited %v after SIGTERM", time.Since(start).Round(10*time.Millisecond))
}
