package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
)

// The tenant-scale test at a size that runs in seconds: 2,000 issuers and
// 4,000 clients, loaded in bulk as authz-bench seed loads them, served by
// three nodes whose caches hold a quarter of the issuers and fewer clients
// than the test touches, so that every guarantee is checked across loads,
// evictions and reloads. run-benchmarks.sh measures the full size.
const (
	scaleIssuers     = 2000
	scaleClients     = 2 * scaleIssuers
	scaleSecret      = "scale-secret"
	scaleIssuerCache = scaleIssuers / 4
	scaleClientCache = 300
)

func scaleIssuerName(i int) string { return fmt.Sprintf("t-%04d", i%scaleIssuers+1) }

// scaleClientID is client i's id; client i belongs to issuer i mod 2,000.
func scaleClientID(i int) string { return fmt.Sprintf("c-%04d", i+1) }

// seedScale loads the issuers, each with an active ES256 key sealed under
// kek, and the clients.
func seedScale(t *testing.T, databaseURL, kek string) {
	t.Helper()
	ctx := context.Background()
	if err := postgres.Migrate(ctx, databaseURL); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, databaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, _ := base64.StdEncoding.DecodeString(kek)
	sealer, err := keys.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, scaleIssuers)
	for i := range names {
		names[i] = scaleIssuerName(i)
	}
	sealed, err := keys.NewManager(st, sealer, keys.NewKeyring(0), keys.DefaultSchedule(5*time.Minute), nil).NewFirstKeys(names, keys.ES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ImportIssuers(ctx, scaleIssuers, func(i int) (store.Issuer, []store.SigningKey) {
		return store.Issuer{Name: names[i], AvailableScopes: []string{"read"}, Audience: "https://api.example.test", TokenLifetime: 5 * time.Minute,
			SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{credential.ClientSecret}}, []store.SigningKey{sealed[i]}
	}); err != nil {
		t.Fatal(err)
	}
	secret := credential.StoredSecret(scaleSecret)
	if err := st.ImportClients(ctx, scaleClients, func(i int) store.Client {
		return store.Client{IssuerName: scaleIssuerName(i), ID: scaleClientID(i), Name: scaleClientID(i), Scopes: []string{"read"},
			Audience: "https://api.example.test", Enabled: true, Secrets: []store.Secret{{ID: "s1", Digest: secret.Digest, Hint: secret.Hint}}}
	}); err != nil {
		t.Fatal(err)
	}
}

// jwksOf fetches an issuer's key set from a node.
func jwksOf(t *testing.T, p *process, issuerName string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(p.publicURL + "/issuers/" + issuerName + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS of %s: status %d", issuerName, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// scaleToken gets a token for client i from a node, and reports its status.
func scaleToken(t *testing.T, p *process, i int) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.publicURL+"/issuers/"+scaleIssuerName(i)+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(scaleClientID(i), scaleSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken, resp.StatusCode
}

// cacheEntries reads a node's authz_cache_entries for one cache.
func cacheEntries(t *testing.T, p *process, cache string) int {
	t.Helper()
	text := scrapeMetrics(t, p)
	prefix := `authz_cache_entries{cache="` + cache + `"} `
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			var n int
			fmt.Sscan(rest, &n)
			return n
		}
	}
	t.Fatalf("no %s in the metrics", prefix)
	return 0
}

func TestManyIssuersOnNodesWithSmallCaches(t *testing.T) {
	t.Parallel()
	databaseURL, kek, env := postgresEnv(t)
	seedScale(t, databaseURL, kek)
	flags := append([]string{"--issuer-cache-size", fmt.Sprint(scaleIssuerCache), "--client-cache-size", fmt.Sprint(scaleClientCache),
		// The refusals this test provokes on purpose must stay 401s.
		"--auth-failures-per-client", "0", "--auth-failures-per-address", "0"}, clusterFlags...)
	nodes := []*process{startPostgresServer(t, env, flags...)}
	for range 2 {
		p := startServer(t, env, flags...)
		p.admin = nodes[0].admin
		nodes = append(nodes, p)
	}
	admin := nodes[0].api(t)
	ctx := context.Background()

	t.Run("every issuer serves its JWKS and tokens that verify against another node's", func(t *testing.T) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < scaleIssuers && !t.Failed(); i = int(next.Add(1)) - 1 {
					set := jwksOf(t, nodes[i%3], scaleIssuerName(i))
					raw, status := scaleToken(t, nodes[(i+1)%3], i)
					if status != http.StatusOK || len(set.Keys) != 1 {
						t.Errorf("issuer %s: token status %d, %d published keys", scaleIssuerName(i), status, len(set.Keys))
						return
					}
					tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
					if err != nil {
						t.Error(err)
						return
					}
					var claims jwt.Claims
					if err := tok.Claims(set.Keys[0].Key, &claims); err != nil || tok.Headers[0].KeyID != set.Keys[0].KeyID {
						t.Errorf("issuer %s: token does not verify against the JWKS of another node: %v", scaleIssuerName(i), err)
						return
					}
					if want := nodes[0].advertisedURL + "/issuers/" + scaleIssuerName(i); claims.Issuer != want || claims.Subject != scaleClientID(i) {
						t.Errorf("token of %s: iss %s sub %s", scaleIssuerName(i), claims.Issuer, claims.Subject)
						return
					}
				}
			})
		}
		wg.Wait()
		for n, p := range nodes {
			if got := cacheEntries(t, p, "keys"); got > scaleIssuerCache {
				t.Errorf("node %d holds %d issuers' keys, past its bound %d", n, got, scaleIssuerCache)
			}
			if got := cacheEntries(t, p, "issuers"); got > scaleIssuerCache {
				t.Errorf("node %d holds %d issuers, past its bound %d", n, got, scaleIssuerCache)
			}
		}
	})

	t.Run("a key rotated through one node is published by every node before it signs", func(t *testing.T) {
		// t-0008 is warm on every node; t-1501 was evicted everywhere by
		// the 2,000 issuers after it.
		for _, i := range []int{7, 1500} {
			name := scaleIssuerName(i)
			for _, p := range nodes {
				if _, status := scaleToken(t, p, i); status != http.StatusOK {
					t.Fatalf("token of %s: %d", name, status)
				}
			}
			before := jwksOf(t, nodes[2], name).Keys[0].KeyID
			if _, err := admin.RotateKeys(ctx, name); err != nil {
				t.Fatal(err)
			}
			rotated := time.Now()
			for n, p := range nodes {
				for len(jwksOf(t, p, name).Keys) != 2 {
					if time.Since(rotated) > 5*time.Second {
						t.Fatalf("node %d does not publish %s's new key 5 s after the rotation", n, name)
					}
					time.Sleep(10 * time.Millisecond)
				}
				raw, _ := scaleToken(t, p, i)
				if kid := kidOf(t, raw); kid != before {
					t.Fatalf("node %d signs %s's tokens with %s, not the published key %s, right after the rotation", n, name, kid, before)
				}
			}
			t.Logf("%s: every node published the successor %v after the rotation", name, time.Since(rotated))
		}
	})

	t.Run("a disabled client is refused on every node, through evictions", func(t *testing.T) {
		const victim = 8
		for _, p := range nodes {
			if _, status := scaleToken(t, p, victim); status != http.StatusOK {
				t.Fatalf("warm-up token: %d", status)
			}
		}
		setEnabled := func(on bool) {
			if _, err := admin.PatchClient(ctx, scaleIssuerName(victim), scaleClientID(victim), api.PatchClientRequest{Enabled: &on}); err != nil {
				t.Fatal(err)
			}
		}
		setEnabled(false)
		disabled := time.Now()
		for n, p := range nodes {
			for {
				_, status := scaleToken(t, p, victim)
				if status == http.StatusUnauthorized {
					break
				}
				if time.Since(disabled) > 5*time.Second {
					t.Fatalf("node %d still answers %d for the disabled client 5 s later", n, status)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("every node refused the disabled client %v after the change", time.Since(disabled))
		// Churn every cache past its bound, then ask again: a reload must
		// read the disabled record, never an older one.
		for round := range 2 {
			for i := range scaleClientCache + 100 {
				if _, status := scaleToken(t, nodes[i%3], victim+1+i+round*scaleClientCache); status != http.StatusOK {
					t.Fatalf("churn token %d: %d", i, status)
				}
			}
			for n, p := range nodes {
				if _, status := scaleToken(t, p, victim); status != http.StatusUnauthorized {
					t.Fatalf("after eviction node %d answers %d for the disabled client", n, status)
				}
			}
		}
		setEnabled(true)
		for _, p := range nodes {
			waitForStatus(t, p, scaleIssuerName(victim), scaleClientID(victim), scaleSecret, http.StatusOK, 5*time.Second)
		}
	})

	t.Run("the rotating node plans every issuer, so that a check reads none", func(t *testing.T) {
		st, err := postgres.Open(ctx, databaseURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			due, err := st.ListKeysDue(ctx, time.Now(), store.DueCursor{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d issuers are still due 20 s after start-up", len(due))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
