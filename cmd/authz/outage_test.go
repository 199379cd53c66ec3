package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/api/client"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// adminRaw sends an admin request and returns the whole answer.
func (p *process) adminRaw(t *testing.T, token, method, path string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.adminURL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func readiness(t *testing.T, p *process) (int, string) {
	t.Helper()
	resp, err := http.Get(p.publicURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body["status"]
}

func TestDatabaseOutageUnderLoad(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	proxy := pgtest.NewProxy(t, databaseURL)
	env := []string{"AUTHZ_DATABASE_URL=" + proxy.URL, "AUTHZ_KEK=" + newKEKBase64(t)}
	// A 2 s cache TTL: during the outage every request has to be served
	// from stale entries, not merely fresh ones.
	p := startPostgresServer(t, env, "--cache-ttl", "2s", "--key-poll-interval", "1s", "--stale-window", "1m")
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a", Description: "before"})
	known := p.createClient(t, "payments", api.CreateClientRequest{Name: "known"})
	id, secret := known.ClientID, known.ClientSecret
	waitForStatus(t, p, "payments", id, secret, http.StatusOK, 5*time.Second)
	adminToken := p.adminToken(t)

	ctx, stop := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if tokenStatus(t, p, "payments", id, secret) == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	proxy.Cut()
	outage := time.Now()
	time.Sleep(3 * time.Second) // past the cache TTL
	writes := 0
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/admin/v1/issuers/payments", map[string]any{"audience": "a", "description": "during the outage"}},
		{http.MethodPost, "/admin/v1/issuers/payments/clients", map[string]any{"name": "lost"}},
	} {
		resp := p.adminRaw(t, adminToken, w.method, w.path, w.body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s during the outage: %d %v; want 503 problem+json with Retry-After", w.method, w.path, resp.StatusCode, resp.Header)
		}
		writes++
	}
	if status, state := readiness(t, p); status != http.StatusOK || state != "degraded" {
		t.Errorf("readyz during the outage: %d %q, want 200 degraded", status, state)
	}
	if resp, err := http.Get(p.publicURL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz during the outage: %v", err)
	}
	time.Sleep(time.Until(outage.Add(20 * time.Second)))
	listens := strings.Count(p.output.String(), "listening for changes")
	proxy.Restore()
	recovered := time.Now()
	for {
		if status, state := readiness(t, p); status == http.StatusOK && state == "ready" {
			break
		}
		if time.Since(recovered) > 15*time.Second {
			t.Fatal("not ready 15 s after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("20 s database outage under load: %d tokens issued, %d failed; %d admin writes refused with 503; ready again %v after recovery",
		ok.Load(), failed.Load(), writes, time.Since(recovered).Truncate(time.Millisecond))
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d token requests for a known client failed during the outage", failed.Load())
	}

	// Nothing was half-written, and writes work again without a restart.
	if got, err := p.api(t).GetIssuer(context.Background(), "payments"); err != nil || got.Description != "before" {
		t.Fatalf("issuer = %+v, %v: a refused write took effect", got, err)
	}
	if clients, err := p.api(t).ListClients(context.Background(), "payments", client.ClientFilter{}); err != nil || len(clients) != 1 {
		t.Fatalf("%d clients, %v: a refused create took effect", len(clients), err)
	}
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a", Description: "after"})
	// LISTEN is back, announced with a full reload: a change made now
	// reaches the cache at once.
	for strings.Count(p.output.String(), "listening for changes") == listens {
		if time.Since(recovered) > 5*time.Second {
			t.Fatal("LISTEN not re-established 5 s after the database came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	disabled := false
	if _, err := p.api(t).PatchClient(context.Background(), "payments", id, api.PatchClientRequest{Enabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, p, "payments", id, secret, http.StatusUnauthorized, time.Second)
}
