// Package postgres is the PostgreSQL implementation of store.Store, on a
// pgx/v5 connection pool.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/authz-dev/authz/migrations"
	"github.com/authz-dev/authz/store"
)

// Store keeps authz's records in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects a pool to databaseURL and checks that the server answers.
// It does not migrate; call Migrate first.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", redactParseError(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create connection pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases every connection of the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// schemaVersionTable records which migrations tern has applied.
const schemaVersionTable = "authz_schema_version"

// Migrate brings the schema at databaseURL up to the newest migration. tern
// holds a PostgreSQL advisory lock while it works, so nodes that start
// together migrate one after another and the later ones find nothing to do.
func Migrate(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL for migration: %w", redactParseError(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))

	m, err := migrate.NewMigrator(ctx, conn, schemaVersionTable)
	if err != nil {
		return fmt.Errorf("prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(migrations.Files()); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// redactParseError drops pgx's connection-string errors down to a message
// that cannot echo a password back into a log.
func redactParseError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

// mapError turns constraint violations into the store's sentinel errors.
func mapError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %s", store.ErrNotFound, pgErr.ConstraintName)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

const issuerColumns = `name, description, available_scopes, audience, token_lifetime_seconds,
	signing_algorithm, client_authenticators, revision, created_at, updated_at`

func scanIssuer(row pgx.Row, extra ...any) (store.Issuer, error) {
	var iss store.Issuer
	var lifetimeSeconds int64
	dest := append([]any{&iss.Name, &iss.Description, &iss.AvailableScopes, &iss.Audience, &lifetimeSeconds,
		&iss.SigningAlgorithm, &iss.ClientAuthenticators, &iss.Revision, &iss.CreatedAt, &iss.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return store.Issuer{}, err
	}
	iss.TokenLifetime = time.Duration(lifetimeSeconds) * time.Second
	return iss, nil
}

// PutIssuer creates or replaces an issuer.
func (s *Store) PutIssuer(ctx context.Context, iss store.Issuer) (store.Issuer, bool, error) {
	// xmax is zero only on a freshly inserted row version, which tells an
	// insert from an update in one round trip.
	const q = `
insert into issuers (name, description, available_scopes, audience, token_lifetime_seconds,
                     signing_algorithm, client_authenticators)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (name) do update set
    description = excluded.description,
    available_scopes = excluded.available_scopes,
    audience = excluded.audience,
    token_lifetime_seconds = excluded.token_lifetime_seconds,
    signing_algorithm = excluded.signing_algorithm,
    client_authenticators = excluded.client_authenticators,
    revision = issuers.revision + 1,
    updated_at = now()
returning ` + issuerColumns + `, (xmax = 0)`
	var created bool
	stored, err := scanIssuer(s.pool.QueryRow(ctx, q, iss.Name, iss.Description, nonNil(iss.AvailableScopes),
		iss.Audience, int64(iss.TokenLifetime/time.Second), iss.SigningAlgorithm, nonNil(iss.ClientAuthenticators)), &created)
	if err != nil {
		return store.Issuer{}, false, fmt.Errorf("put issuer %q: %w", iss.Name, mapError(err))
	}
	return stored, created, nil
}

// GetIssuer returns one issuer.
func (s *Store) GetIssuer(ctx context.Context, name string) (store.Issuer, error) {
	iss, err := scanIssuer(s.pool.QueryRow(ctx, `select `+issuerColumns+` from issuers where name = $1`, name))
	if err != nil {
		return store.Issuer{}, fmt.Errorf("get issuer %q: %w", name, mapError(err))
	}
	return iss, nil
}

// ListIssuers returns every issuer ordered by name.
func (s *Store) ListIssuers(ctx context.Context) ([]store.Issuer, error) {
	rows, err := s.pool.Query(ctx, `select `+issuerColumns+` from issuers order by name`)
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	issuers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Issuer, error) { return scanIssuer(row) })
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	return issuers, nil
}

// CreateClient stores a client and its secrets in one transaction.
func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	var stored store.Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const insertClient = `
insert into clients (issuer_name, client_id, name, scopes, audience, token_lifetime_seconds, enabled)
values ($1, $2, $3, $4, $5, $6, $7)
returning created_at, updated_at`
		stored = c
		stored.Secrets = nil
		if err := tx.QueryRow(ctx, insertClient, c.IssuerName, c.ID, c.Name, nonNil(c.Scopes), c.Audience,
			int64(c.TokenLifetime/time.Second), c.Enabled).Scan(&stored.CreatedAt, &stored.UpdatedAt); err != nil {
			return err
		}
		for _, sec := range c.Secrets {
			const insertSecret = `
insert into client_secrets (issuer_name, client_id, secret_id, digest, hint, expires_at)
values ($1, $2, $3, $4, $5, $6)
returning created_at`
			if err := tx.QueryRow(ctx, insertSecret, c.IssuerName, c.ID, sec.ID, sec.Digest, sec.Hint,
				nullTime(sec.ExpiresAt)).Scan(&sec.CreatedAt); err != nil {
				return err
			}
			stored.Secrets = append(stored.Secrets, sec)
		}
		return nil
	})
	if err != nil {
		return store.Client{}, fmt.Errorf("create client %q of issuer %q: %w", c.ID, c.IssuerName, mapError(err))
	}
	return stored, nil
}

// GetClient returns a client with all of its secrets, expired ones included.
func (s *Store) GetClient(ctx context.Context, issuerName, clientID string) (store.Client, error) {
	// One round trip: the secrets travel as arrays beside the client row.
	const q = `
select c.name, c.scopes, c.audience, c.token_lifetime_seconds, c.enabled, c.created_at, c.updated_at,
       coalesce(array_agg(s.secret_id order by s.created_at, s.secret_id) filter (where s.secret_id is not null), '{}'),
       coalesce(array_agg(s.digest order by s.created_at, s.secret_id) filter (where s.secret_id is not null), '{}'),
       coalesce(array_agg(s.hint order by s.created_at, s.secret_id) filter (where s.secret_id is not null), '{}'),
       coalesce(array_agg(s.created_at order by s.created_at, s.secret_id) filter (where s.secret_id is not null), '{}'),
       coalesce(array_agg(s.expires_at order by s.created_at, s.secret_id) filter (where s.secret_id is not null), '{}')
from clients c
left join client_secrets s on s.issuer_name = c.issuer_name and s.client_id = c.client_id
where c.issuer_name = $1 and c.client_id = $2
group by c.issuer_name, c.client_id`
	c := store.Client{IssuerName: issuerName, ID: clientID}
	var lifetimeSeconds int64
	var ids, hints []string
	var digests [][]byte
	var created []time.Time
	var expires []*time.Time
	err := s.pool.QueryRow(ctx, q, issuerName, clientID).Scan(&c.Name, &c.Scopes, &c.Audience, &lifetimeSeconds,
		&c.Enabled, &c.CreatedAt, &c.UpdatedAt, &ids, &digests, &hints, &created, &expires)
	if err != nil {
		return store.Client{}, fmt.Errorf("get client %q of issuer %q: %w", clientID, issuerName, mapError(err))
	}
	c.TokenLifetime = time.Duration(lifetimeSeconds) * time.Second
	for i := range ids {
		sec := store.Secret{ID: ids[i], Digest: digests[i], Hint: hints[i], CreatedAt: created[i]}
		if expires[i] != nil {
			sec.ExpiresAt = *expires[i]
		}
		c.Secrets = append(c.Secrets, sec)
	}
	return c, nil
}

// CreateSigningKey stores a sealed signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	const q = `
insert into signing_keys (kid, issuer_name, algorithm, state, public_jwk, sealed_private_key, kek_id)
values ($1, $2, $3, $4, $5, $6, $7)`
	if _, err := s.pool.Exec(ctx, q, k.ID, k.IssuerName, k.Algorithm, string(k.State), k.PublicJWK,
		k.SealedPrivateKey, k.KEKID); err != nil {
		return fmt.Errorf("create signing key of issuer %q: %w", k.IssuerName, mapError(err))
	}
	return nil
}

// ListSigningKeys returns an issuer's keys, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error) {
	const q = `
select kid, issuer_name, algorithm, state, public_jwk, sealed_private_key, kek_id, created_at
from signing_keys where issuer_name = $1 order by created_at, kid`
	rows, err := s.pool.Query(ctx, q, issuerName)
	if err != nil {
		return nil, fmt.Errorf("list signing keys of issuer %q: %w", issuerName, err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.SigningKey, error) {
		var k store.SigningKey
		var state string
		err := row.Scan(&k.ID, &k.IssuerName, &k.Algorithm, &state, &k.PublicJWK, &k.SealedPrivateKey, &k.KEKID, &k.CreatedAt)
		k.State = store.KeyState(state)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys of issuer %q: %w", issuerName, err)
	}
	return keys, nil
}

// nonNil keeps PostgreSQL's not-null array columns happy with Go's nil slice.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
