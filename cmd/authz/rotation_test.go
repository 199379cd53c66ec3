package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/api/client"

	"github.com/authz-dev/authz/api"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// gatewayVerifier verifies tokens the way Kong's jwt-keycloak plugin does:
// it caches the JWKS, refetches at most every 10 s and only when a token's
// kid is unknown, and allows no leeway on exp.
type gatewayVerifier struct {
	mu        sync.Mutex
	jwksURLs  []string // behind a load balancer: each fetch may reach another node
	next      int
	keys      jose.JSONWebKeySet
	lastFetch time.Time
	issuer    string
}

const gatewayRefetchInterval = 10 * time.Second

func (v *gatewayVerifier) fetch() error {
	url := v.jwksURLs[v.next%len(v.jwksURLs)]
	v.next++
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS answered %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return err
	}
	v.keys, v.lastFetch = set, time.Now()
	return nil
}

func (v *gatewayVerifier) verify(raw string) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	kid := tok.Headers[0].KeyID
	v.mu.Lock()
	found := v.keys.Key(kid)
	if len(found) == 0 && time.Since(v.lastFetch) >= gatewayRefetchInterval {
		if err := v.fetch(); err != nil {
			v.mu.Unlock()
			return err
		}
		found = v.keys.Key(kid)
	}
	v.mu.Unlock()
	if len(found) == 0 {
		return fmt.Errorf("unknown kid %s", kid)
	}
	var claims jwt.Claims
	if err := tok.Claims(found[0].Key, &claims); err != nil {
		return err
	}
	return claims.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, Time: time.Now()}, 0)
}

// kidOf reads a token's kid without verifying it.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("token is not a JWS: %v", err)
	}
	return tok.Headers[0].KeyID
}

// publishedKids fetches one node's JWKS.
func publishedKids(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		out[k.KeyID] = true
	}
	return out, nil
}

// clusterFlags make the rotating node check often and every node poll
// often, for schedules measured in seconds, and give every node the one
// public URL a load balancer would.
var clusterFlags = []string{"--key-check-interval", "200ms", "--key-poll-interval", "1s", "--public-url", "http://authz.cluster.test"}

// startCluster starts n nodes on one fresh database.
func startCluster(t *testing.T, n int) []*process {
	t.Helper()
	_, _, env := postgresEnv(t)
	nodes := []*process{startPostgresServer(t, env, clusterFlags...)}
	for range n - 1 {
		p := startServer(t, env, clusterFlags...)
		p.admin = nodes[0].admin
		nodes = append(nodes, p)
	}
	return nodes
}

func TestRotationUnderLoadNeverFailsAGatewayVerifier(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	// A key is published 11 s before it signs: longer than the verifier's
	// 10 s refetch limit, which is what makes rotation invisible to it.
	lifetime := int64(60)
	nodes[0].putIssuer(t, "payments", api.IssuerRequest{Audience: "https://api.example.test", TokenLifetime: &lifetime,
		KeyRotationPeriod: 11, KeyPublishLead: 11, KeyRetirePeriod: 120})
	load := nodes[0].createClient(t, "payments", api.CreateClientRequest{Name: "load"})
	id, secret := load.ClientID, load.ClientSecret
	for _, p := range nodes {
		waitForStatus(t, p, "payments", id, secret, http.StatusOK, 5*time.Second)
	}

	var jwksURLs []string
	for _, p := range nodes {
		jwksURLs = append(jwksURLs, p.publicURL+"/issuers/payments/jwks.json")
	}
	verifier := &gatewayVerifier{jwksURLs: jwksURLs, issuer: nodes[0].advertisedURL + "/issuers/payments"}
	if err := verifier.fetch(); err != nil {
		t.Fatal(err)
	}

	const wantRotations = 5
	var tokens, verifyFailures, unpublished, requestErrors atomic.Int64
	var mu sync.Mutex
	signers := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				node := nodes[i%len(nodes)]
				tok, _, err := client.RequestToken(ctx, http.DefaultClient, node.publicURL+"/issuers/payments/token", id, secret, nil)
				if err != nil {
					if ctx.Err() == nil {
						requestErrors.Add(1)
						t.Errorf("token request to node %d: %v", i%len(nodes), err)
					}
					continue
				}
				tokens.Add(1)
				kid := kidOf(t, tok.AccessToken)
				// Every node must already publish the key that signed.
				for n, url := range jwksURLs {
					if kids, err := publishedKids(url); err != nil || !kids[kid] {
						unpublished.Add(1)
						t.Errorf("token from node %d signed by %s, which node %d does not publish (%v)", i%len(nodes), kid, n, err)
					}
				}
				if err := verifier.verify(tok.AccessToken); err != nil {
					verifyFailures.Add(1)
					t.Errorf("gateway verifier refused a token: %v", err)
				}
				mu.Lock()
				signers[kid] = true
				done := len(signers) > wantRotations
				mu.Unlock()
				if done {
					cancel()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Logf("rotation under load: %d tokens, %d signing keys (%d rotations), %d verification failures, %d tokens signed with a key some node did not publish, %d request errors",
		tokens.Load(), len(signers), len(signers)-1, verifyFailures.Load(), unpublished.Load(), requestErrors.Load())
	if len(signers) <= wantRotations {
		t.Fatalf("only %d rotations within the time limit, want %d", len(signers)-1, wantRotations)
	}
}

func TestEmergencyRevokeTakesEffectOnEveryNodeWithinASecond(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	nodes[0].putIssuer(t, "payments", api.IssuerRequest{Audience: "https://api.example.test"})
	c := nodes[0].createClient(t, "payments", api.CreateClientRequest{Name: "c"})
	id, secret := c.ClientID, c.ClientSecret
	var compromised string
	for _, p := range nodes {
		waitForStatus(t, p, "payments", id, secret, http.StatusOK, 5*time.Second)
		kid := kidOf(t, clientToken(t, p.publicURL+"/issuers/payments/token", id, secret, ""))
		if compromised != "" && kid != compromised {
			t.Fatalf("nodes sign with different keys: %s and %s", compromised, kid)
		}
		compromised = kid
	}

	if _, err := nodes[1].api(t).RevokeKey(context.Background(), "payments", compromised); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for n, p := range nodes {
		for {
			kids, err := publishedKids(p.publicURL + "/issuers/payments/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			kid := kidOf(t, clientToken(t, p.publicURL+"/issuers/payments/token", id, secret, ""))
			if !kids[compromised] && kid != compromised && kids[kid] {
				break
			}
			if time.Since(revokedAt) > time.Second {
				t.Fatalf("node %d still publishes (%v) or signs with (%v) the revoked key a second later", n, kids[compromised], kid == compromised)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("every node dropped the revoked key and signed with a fresh one %v after the revoke", time.Since(revokedAt))
	keysList, err := nodes[2].api(t).ListKeys(context.Background(), "payments")
	if err != nil || !slices.ContainsFunc(keysList, func(k api.KeyResponse) bool { return k.KID == compromised && k.State == "revoked" }) {
		t.Fatalf("the key list does not record the revocation: %+v, %v", keysList, err)
	}
}
