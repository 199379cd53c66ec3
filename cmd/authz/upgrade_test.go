package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/migrations"
)

// TestUpgradeFromTheFirstSchemaKeepsServingClientsAndKeys writes a database
// as the first release left it (migration 001 only, rows in that shape),
// then starts today's server on it: the remaining migrations run on
// populated tables, and the old client, secret and signing key keep
// working.
func TestUpgradeFromTheFirstSchemaKeepsServingClientsAndKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	databaseURL, kekBase64, env := postgresEnv(t)
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The store's version table: were it renamed, the server would apply 001
	// again and fail on the existing tables, so this cannot pass silently.
	m, err := migrate.NewMigrator(ctx, conn, "authz_schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(migrations.Files()); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateTo(ctx, 1); err != nil {
		t.Fatalf("migrate to the first schema: %v", err)
	}

	kek, _ := base64.StdEncoding.DecodeString(kekBase64)
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.Generate(keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: keys.RS256, Use: "sig"}
	thumb, _ := pub.Thumbprint(crypto.SHA256)
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, _ := pub.MarshalJSON()
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	const clientID, secret = "c-legacy", "legacy-secret-0123456789abcdefghijklmnopqrstuv"
	runLog.remember("a client secret", secret)
	digest := sha256.Sum256([]byte(secret))
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`insert into issuers (name, description, available_scopes, audience, token_lifetime_seconds, signing_algorithm, client_authenticators)
		  values ('legacy', 'from release 1', '{read,write}', $1, 300, 'RS256', '{client-secret}')`, []any{tutorialAudience}},
		{`insert into clients (issuer_name, client_id, name, scopes, audience) values ('legacy', $1, 'old client', '{read}', $2)`, []any{clientID, tutorialAudience}},
		{`insert into client_secrets (issuer_name, client_id, secret_id, digest, hint) values ('legacy', $1, 's1', $2, 'lega')`, []any{clientID, digest[:]}},
		{`insert into signing_keys (kid, issuer_name, algorithm, state, public_jwk, sealed_private_key, kek_id, created_at)
		  values ($1, 'legacy', 'RS256', 'active', $2, $3, $4, now() - interval '1 hour')`,
			[]any{pub.KeyID, pubJSON, sealer.Seal("legacy", pub.KeyID, der), sealer.KEKID()}},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("write a first-release row: %v", err)
		}
	}

	p := startPostgresServer(t, env)
	issuerURL := p.publicURL + "/issuers/legacy"
	tok := clientToken(t, issuerURL+"/token", clientID, secret, "")
	verifyAsGateway(t, issuerURL, tok, clientID, "read")
	header, _ := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(header, &h); err != nil || h.Kid != pub.KeyID {
		t.Fatalf("token signed by %q, want the first release's key %q", h.Kid, pub.KeyID)
	}

	client, err := p.api(t).GetClient(context.Background(), "legacy", clientID)
	if err != nil || !client.Enabled || client.Name != "old client" {
		t.Fatalf("client after the upgrade: %+v, %v", client, err)
	}
	listed, err := p.api(t).ListKeys(context.Background(), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range listed {
		if k.KID == pub.KeyID {
			found = k.State == "active" && k.ActivatedAt != ""
		}
	}
	if !found {
		t.Fatalf("the first release's key is not listed active with an activation time: %v", listed)
	}
}
