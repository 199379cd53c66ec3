// Package postgres is the PostgreSQL implementation of store.Store, on a
// pgx/v5 connection pool.
package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authz-dev/authz/migrations"
	"github.com/authz-dev/authz/store"
)

// Store keeps authz's records in PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	queries queryCounter
}

// queryCounter counts the statements sent to PostgreSQL and those that
// failed, so that tests and metrics can see whether a path touches the
// database at all, and how often it fails. With a tracer, a statement made
// within a traced request gets a client span of its own; background work
// (key polls) starts no trace.
type queryCounter struct {
	n, failed, roundTrips atomic.Int64
	tracer                trace.Tracer
}

type querySpanKey struct{}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	q.roundTrips.Add(1)
	return q.startSpan(ctx, sqlOperation(data.SQL), attribute.String("db.query.text", data.SQL))
}

func (q *queryCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	q.endSpan(ctx, q.count(data.Err))
}

// count counts a failed statement (finding no row is not one) and returns
// the failure, or nil.
func (q *queryCounter) count(err error) error {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	q.failed.Add(1)
	return err
}

// A batch's statements are counted one by one, as they are sent apart;
// the batch, one round trip, gets one span.
func (q *queryCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	q.roundTrips.Add(1)
	return q.startSpan(ctx, "BATCH", attribute.Int("db.operation.batch.size", data.Batch.Len()))
}

func (q *queryCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	q.n.Add(1)
	q.count(data.Err)
}

func (q *queryCounter) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	if errors.Is(data.Err, pgx.ErrNoRows) {
		data.Err = nil
	}
	q.endSpan(ctx, data.Err)
}

// startSpan opens a client span for a statement or batch made within a
// recorded trace.
func (q *queryCounter) startSpan(ctx context.Context, operation string, attr attribute.KeyValue) context.Context {
	if q.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	ctx, span := q.tracer.Start(ctx, "postgresql "+operation, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attr))
	return context.WithValue(ctx, querySpanKey{}, span)
}

// endSpan closes the span startSpan opened, if any, marking it failed.
func (q *queryCounter) endSpan(ctx context.Context, failed error) {
	span, ok := ctx.Value(querySpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if failed != nil {
		// The SQLSTATE only: a message can quote an argument.
		status := "statement failed"
		var pgErr *pgconn.PgError
		if errors.As(failed, &pgErr) {
			status = "SQLSTATE " + pgErr.Code
		}
		span.SetStatus(codes.Error, status)
	}
	span.End()
}

// sqlOperation is a statement's first keyword (SELECT, INSERT, WITH): the
// text is this package's own, its arguments travel apart.
func sqlOperation(sql string) string {
	sql = strings.TrimSpace(sql)
	if i := strings.IndexAny(sql, " \n\t("); i > 0 {
		sql = sql[:i]
	}
	return strings.ToUpper(sql)
}

// Option adjusts Open.
type Option func(*Store)

// WithTracing gives statements made within traced requests spans of their
// own, from tp.
func WithTracing(tp trace.TracerProvider) Option {
	return func(s *Store) { s.queries.tracer = tp.Tracer("github.com/authz-dev/authz/store/postgres") }
}

// Queries is how many statements this store has sent to PostgreSQL.
func (s *Store) Queries() int64 { return s.queries.n.Load() }

// RoundTrips is how many times this store has waited for PostgreSQL: once
// per statement, or once for a batch of them.
func (s *Store) RoundTrips() int64 { return s.queries.roundTrips.Load() }

// FailedQueries is how many of them failed.
func (s *Store) FailedQueries() int64 { return s.queries.failed.Load() }

var _ store.Store = (*Store)(nil)

// Open connects a pool to databaseURL and checks that the server answers.
// It does not migrate; call Migrate first. log may be nil.
func Open(ctx context.Context, databaseURL string, log *slog.Logger, opts ...Option) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", redactParseError(err))
	}
	s := &Store{log: log}
	for _, opt := range opts {
		opt(s)
	}
	cfg.ConnConfig.Tracer = &s.queries
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create connection pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s.pool = pool
	return s, nil
}

// Close releases every connection of the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", mapError(err))
	}
	return nil
}

// schemaVersionTable records which migrations tern has applied.
const schemaVersionTable = "authz_schema_version"

// Migrate brings the schema at databaseURL up to the newest migration. tern
// holds a PostgreSQL advisory lock while it works, so nodes that start
// together migrate one after another and the later ones find nothing to do.
//
// The URL is parsed as the pool parses it, so that the pool's settings
// (pool_max_conns and the rest, which PostgreSQL itself would refuse as
// unknown parameters) work for migrations too.
func Migrate(ctx context.Context, databaseURL string) error {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", redactParseError(err))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		if unreachable(err) {
			return fmt.Errorf("connect to PostgreSQL for migration: %w: %v", store.ErrUnavailable, err)
		}
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

// unreachable tells a failure to reach PostgreSQL (refused, reset, timed
// out, server shutting down) from an answer it gave.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exception; 57P01-03 are shutdown and
		// crash recovery.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) ||
		pgconn.Timeout(err)
}

// mapError turns constraint violations and unreachability into the store's
// sentinel errors.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %s", store.ErrNotFound, pgErr.ConstraintName)
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			// No stored text holds such bytes, so nothing is named by them.
			return fmt.Errorf("%w: not valid text", store.ErrNotFound)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// querier is what both the pool and a transaction offer, so that reads can
// run alone or inside a write.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const issuerColumns = `name, description, available_scopes, client_roles, audience, token_lifetime_seconds,
	signing_algorithm, client_authenticators, key_rotation_seconds, key_publish_lead_seconds, key_retire_seconds,
	url_style, anonymous_registration, revision, created_at, updated_at`

func scanIssuer(row pgx.Row) (store.Issuer, error) {
	var iss store.Issuer
	var lifetime, rotation, lead, retire int64
	if err := row.Scan(&iss.Name, &iss.Description, &iss.AvailableScopes, &iss.ClientRoles, &iss.Audience, &lifetime,
		&iss.SigningAlgorithm, &iss.ClientAuthenticators, &rotation, &lead, &retire,
		&iss.URLStyle, &iss.AnonymousRegistration, &iss.Revision, &iss.CreatedAt, &iss.UpdatedAt); err != nil {
		return store.Issuer{}, err
	}
	iss.TokenLifetime = seconds(lifetime)
	iss.KeyRotationPeriod, iss.KeyPublishLead, iss.KeyRetirePeriod = seconds(rotation), seconds(lead), seconds(retire)
	return iss, nil
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

func toSeconds(d time.Duration) int64 { return int64(d / time.Second) }

// issuerValues are the settable columns, in the order the writes use.
func issuerValues(iss store.Issuer) []any {
	return []any{iss.Name, iss.Description, nonNil(iss.AvailableScopes), nonNil(iss.ClientRoles), iss.Audience,
		toSeconds(iss.TokenLifetime), iss.SigningAlgorithm, nonNil(iss.ClientAuthenticators),
		toSeconds(iss.KeyRotationPeriod), toSeconds(iss.KeyPublishLead), toSeconds(iss.KeyRetirePeriod),
		iss.URLStyle, iss.AnonymousRegistration}
}

// PutIssuer creates or replaces an issuer.
func (s *Store) PutIssuer(ctx context.Context, iss store.Issuer, ifRevision int64) (store.Issuer, store.PutResult, error) {
	var stored store.Issuer
	var result store.PutResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		stored, result, _, err = putIssuer(ctx, tx, iss, ifRevision)
		return err
	})
	if err != nil {
		return store.Issuer{}, 0, fmt.Errorf("put issuer %q: %w", iss.Name, mapError(err))
	}
	return stored, result, nil
}

// putIssuer creates or replaces an issuer inside tx, holding its row lock
// until tx ends.
func putIssuer(ctx context.Context, tx pgx.Tx, iss store.Issuer, ifRevision int64) (store.Issuer, store.PutResult, []string, error) {
	current, err := scanIssuer(tx.QueryRow(ctx, `select `+issuerColumns+` from issuers where name = $1 for update`, iss.Name))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if ifRevision != 0 {
			return store.Issuer{}, 0, nil, fmt.Errorf("issuer %q does not exist: %w", iss.Name, store.ErrPrecondition)
		}
		stored, err := scanIssuer(tx.QueryRow(ctx, `
insert into issuers (name, description, available_scopes, client_roles, audience, token_lifetime_seconds,
                     signing_algorithm, client_authenticators, key_rotation_seconds, key_publish_lead_seconds, key_retire_seconds,
                     url_style, anonymous_registration)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
returning `+issuerColumns, issuerValues(iss)...))
		return stored, store.Created, nil, err
	case err != nil:
		return store.Issuer{}, 0, nil, err
	}
	if err := current.CheckRevision(ifRevision); err != nil {
		return store.Issuer{}, 0, nil, err
	}
	changed := current.ChangedSettings(iss)
	if len(changed) == 0 {
		return current, store.Unchanged, nil, nil
	}
	stored, err := scanIssuer(tx.QueryRow(ctx, `
update issuers set description = $2, available_scopes = $3, client_roles = $4, audience = $5,
    token_lifetime_seconds = $6, signing_algorithm = $7, client_authenticators = $8,
    key_rotation_seconds = $9, key_publish_lead_seconds = $10, key_retire_seconds = $11,
    url_style = $12, anonymous_registration = $13, revision = revision + 1, updated_at = now()
where name = $1
returning `+issuerColumns, issuerValues(iss)...))
	return stored, store.Updated, changed, err
}

// GetIssuer returns one issuer.
func (s *Store) GetIssuer(ctx context.Context, name string) (store.Issuer, error) {
	iss, err := scanIssuer(s.pool.QueryRow(ctx, selectIssuer, name))
	if err != nil {
		return store.Issuer{}, fmt.Errorf("get issuer %q: %w", name, mapError(err))
	}
	return iss, nil
}

// pageLimit turns the contract's "0 means all" into SQL's "null means all".
func pageLimit(p store.Page) *int {
	if p.Limit <= 0 {
		return nil
	}
	return &p.Limit
}

// ListIssuers returns issuers ordered by name.
func (s *Store) ListIssuers(ctx context.Context, page store.Page) ([]store.Issuer, error) {
	rows, err := s.pool.Query(ctx, `select `+issuerColumns+` from issuers where name > $1 order by name limit $2`,
		page.After, pageLimit(page))
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", mapError(err))
	}
	issuers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Issuer, error) { return scanIssuer(row) })
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", mapError(err))
	}
	return issuers, nil
}

// DeleteIssuer deletes an issuer; its keys, and with cascade its clients, go
// with it through the schema's foreign keys.
func (s *Store) DeleteIssuer(ctx context.Context, name string, cascade bool, ifRevision int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var revision int64
		if err := tx.QueryRow(ctx, `select revision from issuers where name = $1 for update`, name).Scan(&revision); err != nil {
			return err
		}
		if err := (store.Issuer{Name: name, Revision: revision}).CheckRevision(ifRevision); err != nil {
			return err
		}
		if !cascade {
			var clients int64
			if err := tx.QueryRow(ctx, `select count(*) from clients where issuer_name = $1`, name).Scan(&clients); err != nil {
				return err
			}
			if clients > 0 {
				return fmt.Errorf("issuer %q still has %d clients: %w", name, clients, store.ErrConflict)
			}
		}
		_, err := tx.Exec(ctx, `delete from issuers where name = $1`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete issuer %q: %w", name, mapError(err))
	}
	return nil
}

// clientColumns are a client's own columns and, beside them, its role and
// scope mappings as arrays of kinds, role ids, clients and names, filled
// in one pass by clientMappings (which must follow "from clients c").
// The arrays come unordered, aligned because one aggregation fills them
// all; the scan orders them. An ordered aggregate per array, or a sorted
// subquery per array, made every client read cost about twice the
// database time (pgbench of the one-client read, 2026-12-03).
const clientColumns = `c.issuer_name, c.client_id, c.internal_id, c.service_account_id, c.name, c.scopes, c.optional_scopes,
	c.roles, c.audience, c.token_lifetime_seconds, c.enabled, c.created_at, c.updated_at, c.public_jwk, c.jwks_uri,
	c.full_scope_allowed, c.registration_token_digest, c.registered_with,
	coalesce(mm.kinds, '{}'), coalesce(mm.ids, '{}'), coalesce(mm.clients, '{}'), coalesce(mm.names, '{}')`

const clientMappings = `cross join lateral (
	select array_agg(m.kind) kinds, array_agg(r.role_id) ids, array_agg(r.client_id) clients, array_agg(r.name) names
	from role_mappings m join roles r using (role_id)
	where m.issuer_name = c.issuer_name and m.client_id = c.client_id) mm`

// clientScan reads clientColumns into a client.
type clientScan struct {
	c               store.Client
	lifetimeSeconds int64
	// The mappings' kinds ("role" or "scope"), role ids, clients and names.
	kinds, ids, clients, names []string
}

func (s *clientScan) targets() []any {
	c := &s.c
	return []any{&c.IssuerName, &c.ID, &c.InternalID, &c.ServiceAccountID, &c.Name, &c.Scopes, &c.OptionalScopes,
		&c.Roles, &c.Audience, &s.lifetimeSeconds, &c.Enabled, &c.CreatedAt, &c.UpdatedAt, &c.PublicJWK, &c.JWKSURI,
		&c.FullScopeAllowed, &c.RegistrationTokenDigest, &c.RegisteredWith, &s.kinds, &s.ids, &s.clients, &s.names}
}

// client finishes the scan.
func (s *clientScan) client() store.Client {
	c := s.c
	c.TokenLifetime = seconds(s.lifetimeSeconds)
	for i, kind := range s.kinds {
		ref := store.RoleRef{ID: s.ids[i], ClientID: s.clients[i], Name: s.names[i]}
		if kind == "scope" {
			c.ScopeMappings = append(c.ScopeMappings, ref)
		} else {
			c.RoleMappings = append(c.RoleMappings, ref)
		}
	}
	slices.SortFunc(c.RoleMappings, store.CompareRoleRefs)
	slices.SortFunc(c.ScopeMappings, store.CompareRoleRefs)
	return c
}

// nullJSON stores an absent JWK as SQL null.
func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateClient stores a client and its secrets in one transaction.
func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return s.RegisterClient(ctx, c, nil, time.Time{})
}

// RegisterClient stores a client and, with an initial access token's
// digest, spends one of its uses, in one transaction.
func (s *Store) RegisterClient(ctx context.Context, c store.Client, initialAccessDigest []byte, now time.Time) (store.Client, error) {
	var stored store.Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		registeredWith := ""
		if initialAccessDigest != nil {
			var err error
			if registeredWith, err = spendInitialAccessToken(ctx, tx, c.IssuerName, initialAccessDigest, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
insert into clients (issuer_name, client_id, internal_id, service_account_id, name, scopes, optional_scopes, roles, audience,
                     token_lifetime_seconds, enabled, public_jwk, jwks_uri, full_scope_allowed, registration_token_digest, registered_with)
values ($1, $2, coalesce(nullif($3, ''), gen_random_uuid()::text), coalesce(nullif($4, ''), gen_random_uuid()::text),
        $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			c.IssuerName, c.ID, c.InternalID, c.ServiceAccountID, c.Name, nonNil(c.Scopes), nonNil(c.OptionalScopes), nonNil(c.Roles),
			c.Audience, toSeconds(c.TokenLifetime), c.Enabled, nullJSON(c.PublicJWK), c.JWKSURI, c.FullScopeAllowed,
			nullBytes(c.RegistrationTokenDigest), registeredWith); err != nil {
			return err
		}
		for _, sec := range c.Secrets {
			if err := insertSecret(ctx, tx, c.IssuerName, c.ID, sec); err != nil {
				return err
			}
		}
		if err := writeMappings(ctx, tx, c); err != nil {
			return err
		}
		var err error
		stored, err = getClient(ctx, tx, byClientID, c.IssuerName, c.ID)
		return err
	})
	if err != nil {
		return store.Client{}, fmt.Errorf("create client %q of issuer %q: %w", c.ID, c.IssuerName, mapError(err))
	}
	return stored, nil
}

// spendInitialAccessToken takes one use of the issuer's token with that
// digest and returns its id, or says why it cannot.
func spendInitialAccessToken(ctx context.Context, tx pgx.Tx, issuerName string, digest []byte, now time.Time) (string, error) {
	var id string
	var expires *time.Time
	var remaining int
	err := tx.QueryRow(ctx, `select token_id, expires_at, remaining_count from initial_access_tokens where issuer_name = $1 and digest = $2 for update`,
		issuerName, digest).Scan(&id, &expires, &remaining)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("no such initial access token: %w", store.ErrNotFound)
	case err != nil:
		return "", err
	case expires != nil && !now.Before(*expires):
		return "", fmt.Errorf("the initial access token expired: %w", store.ErrPrecondition)
	case remaining <= 0:
		return "", fmt.Errorf("the initial access token is used up: %w", store.ErrPrecondition)
	}
	_, err = tx.Exec(ctx, `update initial_access_tokens set remaining_count = remaining_count - 1 where issuer_name = $1 and token_id = $2`,
		issuerName, id)
	return id, err
}

// writeMappings replaces a client's role and scope mappings.
func writeMappings(ctx context.Context, tx pgx.Tx, c store.Client) error {
	if _, err := tx.Exec(ctx, `delete from role_mappings where issuer_name = $1 and client_id = $2`, c.IssuerName, c.ID); err != nil {
		return err
	}
	for kind, refs := range map[string][]store.RoleRef{"role": c.RoleMappings, "scope": c.ScopeMappings} {
		for _, ref := range refs {
			// The role must be the issuer's: a role id of another issuer
			// inserts nothing and is reported missing.
			tag, err := tx.Exec(ctx, `
insert into role_mappings (issuer_name, client_id, kind, role_id)
select $1, $2, $3, role_id from roles where role_id = $4 and issuer_name = $1
on conflict do nothing`, c.IssuerName, c.ID, kind, ref.ID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				var exists bool
				if err := tx.QueryRow(ctx, `select exists (select 1 from role_mappings where issuer_name = $1 and client_id = $2 and kind = $3 and role_id = $4)`,
					c.IssuerName, c.ID, kind, ref.ID).Scan(&exists); err != nil {
					return err
				}
				if !exists {
					return fmt.Errorf("role %q: %w", ref.ID, store.ErrNotFound)
				}
			}
		}
	}
	return nil
}

func insertSecret(ctx context.Context, q querier, issuerName, clientID string, sec store.Secret) error {
	_, err := q.Exec(ctx, `
insert into client_secrets (issuer_name, client_id, secret_id, digest, hint, expires_at)
values ($1, $2, $3, $4, $5, $6)`, issuerName, clientID, sec.ID, sec.Digest, sec.Hint, nullTime(sec.ExpiresAt))
	return err
}

// GetClient returns a client with all of its secrets, expired ones included.
func (s *Store) GetClient(ctx context.Context, issuerName, clientID string) (store.Client, error) {
	c, err := getClient(ctx, s.pool, byClientID, issuerName, clientID)
	if err != nil {
		return store.Client{}, fmt.Errorf("get client %q of issuer %q: %w", clientID, issuerName, mapError(err))
	}
	return c, nil
}

// GetClientByInternalID finds a client by its Keycloak-style id.
func (s *Store) GetClientByInternalID(ctx context.Context, issuerName, internalID string) (store.Client, error) {
	c, err := getClient(ctx, s.pool, `c.issuer_name = $1 and c.internal_id = $2`, issuerName, internalID)
	if err != nil {
		return store.Client{}, fmt.Errorf("find client by internal id %q of issuer %q: %w", internalID, issuerName, mapError(err))
	}
	return c, nil
}

// GetClientByServiceAccount finds a client by its service account's id.
func (s *Store) GetClientByServiceAccount(ctx context.Context, issuerName, serviceAccountID string) (store.Client, error) {
	c, err := getClient(ctx, s.pool, `c.issuer_name = $1 and c.service_account_id = $2`, issuerName, serviceAccountID)
	if err != nil {
		return store.Client{}, fmt.Errorf("find client by service account %q of issuer %q: %w", serviceAccountID, issuerName, mapError(err))
	}
	return c, nil
}

// getClient reads the one client where holds, with its secrets and
// mappings, in one round trip.
func getClient(ctx context.Context, q querier, where string, args ...any) (store.Client, error) {
	clients, err := getClients(ctx, q, where, args...)
	if err != nil {
		return store.Client{}, err
	}
	if len(clients) == 0 {
		return store.Client{}, pgx.ErrNoRows
	}
	return clients[0], nil
}

// getClients reads the clients where holds, each with its secrets and
// mappings, ordered by id.
func getClients(ctx context.Context, q querier, where string, args ...any) ([]store.Client, error) {
	rows, err := q.Query(ctx, selectClients(where), args...)
	if err != nil {
		return nil, err
	}
	return scanClients(rows)
}

// selectClients is the read of the clients where holds, for scanClients. A
// client comes as one row per secret (one without), which is cheaper for
// PostgreSQL than aggregating them.
func selectClients(where string) string {
	return `
select ` + clientColumns + `, s.secret_id, s.digest, s.hint, s.created_at, s.expires_at
from clients c ` + clientMappings + `
left join client_secrets s on s.issuer_name = c.issuer_name and s.client_id = c.client_id
where ` + where + `
order by c.issuer_name, c.client_id`
}

// byClientID picks, for selectClients, the client of an issuer ($1) with
// an id ($2).
const byClientID = `c.issuer_name = $1 and c.client_id = $2`

// selectOneClient reads the client of an issuer ($1) with an id ($2).
var selectOneClient = selectClients(byClientID)

// scanClients reads the rows of selectClients, and closes them.
func scanClients(rows pgx.Rows) ([]store.Client, error) {
	defer rows.Close()
	var clients []store.Client
	for rows.Next() {
		var scan clientScan
		var id, hint *string
		var digest []byte
		var created, expires *time.Time
		if err := rows.Scan(append(scan.targets(), &id, &digest, &hint, &created, &expires)...); err != nil {
			return nil, err
		}
		if n := len(clients); n == 0 || clients[n-1].IssuerName != scan.c.IssuerName || clients[n-1].ID != scan.c.ID {
			clients = append(clients, scan.client())
		}
		if id == nil {
			continue
		}
		sec := store.Secret{ID: *id, Digest: digest, Hint: *hint, CreatedAt: *created}
		if expires != nil {
			sec.ExpiresAt = *expires
		}
		last := &clients[len(clients)-1]
		last.Secrets = append(last.Secrets, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range clients {
		slices.SortFunc(clients[i].Secrets, func(a, b store.Secret) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
	}
	return clients, nil
}

// ListClients returns an issuer's clients ordered by id.
func (s *Store) ListClients(ctx context.Context, issuerName string, q store.ClientQuery) ([]store.Client, error) {
	rows, err := s.pool.Query(ctx, `
select `+clientColumns+` from clients c `+clientMappings+`
where c.issuer_name = $1 and c.client_id > $2
  and ($3 = '' or strpos(lower(c.name), lower($3)) > 0)
  and ($4::boolean is null or c.enabled = $4)
  and ($6 = '' or strpos(lower(c.client_id), lower($6)) > 0)
order by c.client_id
limit $5`, issuerName, q.After, q.Name, q.Enabled, pageLimit(q.Page), q.IDContains)
	if err != nil {
		return nil, fmt.Errorf("list clients of issuer %q: %w", issuerName, mapError(err))
	}
	clients, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Client, error) {
		var scan clientScan
		err := row.Scan(scan.targets()...)
		return scan.client(), err
	})
	if err != nil {
		return nil, fmt.Errorf("list clients of issuer %q: %w", issuerName, mapError(err))
	}
	return clients, nil
}

// lockClient takes the client's row lock for the rest of the transaction.
func lockClient(ctx context.Context, tx pgx.Tx, issuerName, clientID string) error {
	var one int
	return tx.QueryRow(ctx, `select 1 from clients where issuer_name = $1 and client_id = $2 for update`,
		issuerName, clientID).Scan(&one)
}

// UpdateClient changes a client's mutable fields atomically.
func (s *Store) UpdateClient(ctx context.Context, issuerName, clientID string, update func(*store.Client) error) (store.Client, error) {
	var stored store.Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockClient(ctx, tx, issuerName, clientID); err != nil {
			return err
		}
		c, err := getClient(ctx, tx, byClientID, issuerName, clientID)
		if err != nil {
			return err
		}
		before := c
		if err := update(&c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
update clients set name = $3, scopes = $4, optional_scopes = $5, roles = $6, audience = $7, token_lifetime_seconds = $8,
    enabled = $9, public_jwk = $10, jwks_uri = $11, full_scope_allowed = $12, registration_token_digest = $13, updated_at = now()
where issuer_name = $1 and client_id = $2`, issuerName, clientID, c.Name, nonNil(c.Scopes), nonNil(c.OptionalScopes), nonNil(c.Roles),
			c.Audience, toSeconds(c.TokenLifetime), c.Enabled, nullJSON(c.PublicJWK), c.JWKSURI, c.FullScopeAllowed,
			nullBytes(c.RegistrationTokenDigest)); err != nil {
			return err
		}
		// Mappings are rewritten only when they change, so that an update
		// of other fields sends no mapping notifications.
		c.IssuerName, c.ID = issuerName, clientID
		if !slices.Contains(before.ChangedSettings(c), "RoleMappings") && !slices.Contains(before.ChangedSettings(c), "ScopeMappings") {
			stored, err = getClient(ctx, tx, byClientID, issuerName, clientID)
			return err
		}
		if err := writeMappings(ctx, tx, c); err != nil {
			return err
		}
		stored, err = getClient(ctx, tx, byClientID, issuerName, clientID)
		return err
	})
	if err != nil {
		return store.Client{}, fmt.Errorf("update client %q of issuer %q: %w", clientID, issuerName, mapError(err))
	}
	return stored, nil
}

// DeleteClient deletes a client with its secrets, mappings and the roles
// defined on it (and so every mapping to them).
func (s *Store) DeleteClient(ctx context.Context, issuerName, clientID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `delete from clients where issuer_name = $1 and client_id = $2`, issuerName, clientID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `delete from roles where issuer_name = $1 and client_id = $2`, issuerName, clientID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete client %q of issuer %q: %w", clientID, issuerName, mapError(err))
	}
	return nil
}

// CreateRole defines a role on a client, or on the issuer.
func (s *Store) CreateRole(ctx context.Context, r store.Role) (store.Role, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if r.ClientID != "" {
			if err := lockClient(ctx, tx, r.IssuerName, r.ClientID); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `
insert into roles (role_id, issuer_name, client_id, name, description)
values (coalesce(nullif($1, ''), gen_random_uuid()::text), $2, $3, $4, $5)
returning role_id`, r.ID, r.IssuerName, r.ClientID, r.Name, r.Description).Scan(&r.ID)
	})
	if err != nil {
		return store.Role{}, fmt.Errorf("create role %q of client %q of issuer %q: %w", r.Name, r.ClientID, r.IssuerName, mapError(err))
	}
	return r, nil
}

// ListRoles returns a client's roles, or the issuer's realm roles.
func (s *Store) ListRoles(ctx context.Context, issuerName, clientID string) ([]store.Role, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `
select case when $2 = '' then exists (select 1 from issuers where name = $1)
            else exists (select 1 from clients where issuer_name = $1 and client_id = $2) end`, issuerName, clientID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("list roles of client %q: %w", clientID, mapError(err))
	}
	if !exists {
		return nil, fmt.Errorf("list roles of client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `
select issuer_name, client_id, role_id, name, description from roles
where issuer_name = $1 and client_id = $2 order by name`, issuerName, clientID)
	if err != nil {
		return nil, fmt.Errorf("list roles of client %q: %w", clientID, mapError(err))
	}
	roles, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Role])
	if err != nil {
		return nil, fmt.Errorf("list roles of client %q: %w", clientID, mapError(err))
	}
	return roles, nil
}

// DeleteRole deletes a role; its mappings go by cascade, and their
// triggers tell every node of the clients whose tokens change.
func (s *Store) DeleteRole(ctx context.Context, issuerName, clientID, name string) error {
	tag, err := s.pool.Exec(ctx, `delete from roles where issuer_name = $1 and client_id = $2 and name = $3`, issuerName, clientID, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete role %q of client %q: %w", name, clientID, mapError(err))
	}
	return nil
}

// CreateInitialAccessToken stores an initial access token.
func (s *Store) CreateInitialAccessToken(ctx context.Context, t store.InitialAccessToken) (store.InitialAccessToken, error) {
	err := s.pool.QueryRow(ctx, `
insert into initial_access_tokens (issuer_name, token_id, digest, expires_at, remaining_count)
values ($1, coalesce(nullif($2, ''), gen_random_uuid()::text), $3, $4, $5)
returning token_id, created_at`, t.IssuerName, t.ID, t.Digest, nullTime(t.ExpiresAt), t.RemainingCount).Scan(&t.ID, &t.CreatedAt)
	if err != nil {
		return store.InitialAccessToken{}, fmt.Errorf("create initial access token of issuer %q: %w", t.IssuerName, mapError(err))
	}
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Microsecond)
	return t, nil
}

// ListInitialAccessTokens lists an issuer's initial access tokens, oldest
// first.
func (s *Store) ListInitialAccessTokens(ctx context.Context, issuerName string) ([]store.InitialAccessToken, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `select exists (select 1 from issuers where name = $1)`, issuerName).Scan(&exists); err != nil {
		return nil, fmt.Errorf("list initial access tokens of issuer %q: %w", issuerName, mapError(err))
	}
	if !exists {
		return nil, fmt.Errorf("list initial access tokens of issuer %q: %w", issuerName, store.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `
select issuer_name, token_id, digest, created_at, coalesce(expires_at, '0001-01-01 00:00:00+00'), remaining_count
from initial_access_tokens where issuer_name = $1 order by created_at, token_id`, issuerName)
	if err != nil {
		return nil, fmt.Errorf("list initial access tokens of issuer %q: %w", issuerName, mapError(err))
	}
	tokens, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.InitialAccessToken])
	if err != nil {
		return nil, fmt.Errorf("list initial access tokens of issuer %q: %w", issuerName, mapError(err))
	}
	for i := range tokens {
		tokens[i].ExpiresAt = tokens[i].ExpiresAt.UTC()
	}
	return tokens, nil
}

// DeleteInitialAccessToken revokes an initial access token.
func (s *Store) DeleteInitialAccessToken(ctx context.Context, issuerName, id string) error {
	tag, err := s.pool.Exec(ctx, `delete from initial_access_tokens where issuer_name = $1 and token_id = $2`, issuerName, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete initial access token %q: %w", id, mapError(err))
	}
	return nil
}

// AddClientSecret adds a secret and bounds the others' validity.
func (s *Store) AddClientSecret(ctx context.Context, issuerName, clientID string, sec store.Secret, retireOthersAt time.Time) (store.Client, error) {
	var stored store.Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockClient(ctx, tx, issuerName, clientID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
update client_secrets set expires_at = least(coalesce(expires_at, $3), $3)
where issuer_name = $1 and client_id = $2 and $3::timestamptz is not null`, issuerName, clientID, nullTime(retireOthersAt)); err != nil {
			return err
		}
		if err := insertSecret(ctx, tx, issuerName, clientID, sec); err != nil {
			return err
		}
		var err error
		stored, err = getClient(ctx, tx, byClientID, issuerName, clientID)
		return err
	})
	if err != nil {
		return store.Client{}, fmt.Errorf("add secret to client %q of issuer %q: %w", clientID, issuerName, mapError(err))
	}
	return stored, nil
}

// DeleteClientSecret revokes one secret.
func (s *Store) DeleteClientSecret(ctx context.Context, issuerName, clientID, secretID string) error {
	tag, err := s.pool.Exec(ctx, `delete from client_secrets where issuer_name = $1 and client_id = $2 and secret_id = $3`,
		issuerName, clientID, secretID)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete secret %q of client %q: %w", secretID, clientID, mapError(err))
	}
	return nil
}

const keyColumns = `kid, issuer_name, algorithm, state, public_jwk, sealed_private_key, kek_id, created_at,
	activate_at, activated_at, retired_at, delete_at`

// selectIssuer reads the issuer named $1; selectKeys its keys, oldest
// first. GetIssuerKeys sends both at once.
const (
	selectIssuer = `select ` + issuerColumns + ` from issuers where name = $1`
	selectKeys   = `select ` + keyColumns + ` from signing_keys where issuer_name = $1 order by created_at, kid`
)

func listKeys(ctx context.Context, q querier, issuerName string) ([]store.SigningKey, error) {
	rows, err := q.Query(ctx, selectKeys, issuerName)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanKey)
}

// GetIssuerKeys sends the issuer's read, its keys' and the client's as one
// batch: one round trip instead of three on a node's first token of an
// issuer.
func (s *Store) GetIssuerKeys(ctx context.Context, name, clientID string) (store.IssuerKeys, error) {
	var ik store.IssuerKeys
	batch := &pgx.Batch{}
	batch.Queue(selectIssuer, name).QueryRow(func(row pgx.Row) error {
		var err error
		ik.Issuer, err = scanIssuer(row)
		return err
	})
	batch.Queue(selectKeys, name).Query(func(rows pgx.Rows) error {
		var err error
		ik.Keys, err = pgx.CollectRows(rows, scanKey)
		return err
	})
	if clientID != "" {
		batch.Queue(selectOneClient, name, clientID).Query(func(rows pgx.Rows) error {
			clients, err := scanClients(rows)
			if len(clients) == 1 {
				ik.Client = &clients[0]
			}
			return err
		})
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return store.IssuerKeys{}, fmt.Errorf("get issuer %q with its keys: %w", name, mapError(err))
	}
	return ik, nil
}

// ListKeysDue reads the issuers due by now from the due-time index, then
// their keys: a check with nothing due reads no row. A write between the
// two reads changes the version, so a plan made from the newer keys is not
// recorded under the older version.
func (s *Store) ListKeysDue(ctx context.Context, now time.Time, after store.DueCursor, limit int) ([]store.IssuerKeys, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	// Two statements rather than one with "$2 is null or …", which would
	// keep the row comparison out of the index condition.
	const query = `select ` + issuerColumns + `, s.changed_xid::text, s.due_at::text
from issuer_key_schedule s join issuers on issuers.name = s.issuer_name
where s.due_at <= $1 %s order by s.due_at, s.issuer_name limit $2`
	var rows pgx.Rows
	var err error
	if after.Due == "" {
		rows, err = s.pool.Query(ctx, fmt.Sprintf(query, ""), now, lim)
	} else {
		rows, err = s.pool.Query(ctx, fmt.Sprintf(query, "and (s.due_at, s.issuer_name) > ($3::timestamptz, $4)"), now, lim, after.Due, after.Issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("list issuers with keys due: %w", mapError(err))
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.IssuerKeys, error) {
		var version, dueAt string
		iss, err := scanIssuer(trailing{row, []any{&version, &dueAt}})
		if err != nil {
			return store.IssuerKeys{}, err
		}
		v, err := strconv.ParseUint(version, 10, 64)
		return store.IssuerKeys{Issuer: iss, Version: v, Position: store.DueCursor{Due: dueAt, Issuer: iss.Name}}, err
	})
	if err != nil {
		return nil, fmt.Errorf("list issuers with keys due: %w", mapError(err))
	}
	if len(due) == 0 {
		return nil, nil
	}
	names := make([]string, len(due))
	for i, ik := range due {
		names[i] = ik.Issuer.Name
	}
	rows, err = s.pool.Query(ctx, `select `+keyColumns+` from signing_keys where issuer_name = any($1)
order by issuer_name, created_at, kid`, names)
	if err != nil {
		return nil, fmt.Errorf("list keys due: %w", mapError(err))
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("list keys due: %w", mapError(err))
	}
	byIssuer := map[string][]store.SigningKey{}
	for _, k := range keys {
		byIssuer[k.IssuerName] = append(byIssuer[k.IssuerName], k)
	}
	for i := range due {
		due[i].Keys = byIssuer[due[i].Issuer.Name]
	}
	return due, nil
}

// trailing scans more columns after those a scanner asks for.
type trailing struct {
	pgx.Row
	more []any
}

func (r trailing) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.more...)...) }

// setKeysDue records due times, each only where the issuer's keys are
// still at the version planned from. The version is compared as text so
// that no plan can look issuers up by it: a bulk load writes thousands of
// issuers in one transaction, all at one version, and with statistics from
// before it the planner would take the version's index and read all of
// them for every issuer in the batch (five minutes of PostgreSQL's CPU
// for the first check after 100,000 issuers were seeded).
const setKeysDue = `update issuer_key_schedule s set due_at = d.at
from unnest($1::text[], $2::text[], $3::timestamptz[]) as d(name, version, at)
where s.issuer_name = d.name and s.changed_xid::text = d.version`

// SetKeysDue records due times in one statement.
func (s *Store) SetKeysDue(ctx context.Context, due []store.KeysDue) error {
	if len(due) == 0 {
		return nil
	}
	names, versions, ats := make([]string, len(due)), make([]string, len(due)), make([]time.Time, len(due))
	for i, d := range due {
		names[i], versions[i], ats[i] = d.Issuer, strconv.FormatUint(d.Version, 10), d.At
	}
	_, err := s.pool.Exec(ctx, setKeysDue, names, versions, ats)
	if err != nil {
		return fmt.Errorf("record when keys are due: %w", mapError(err))
	}
	return nil
}

// OneKeyPerKEK returns one key sealed under each KEK in use.
func (s *Store) OneKeyPerKEK(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `select distinct on (kek_id) `+keyColumns+` from signing_keys order by kek_id, kid`)
	if err != nil {
		return nil, fmt.Errorf("sample keys by KEK: %w", mapError(err))
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("sample keys by KEK: %w", mapError(err))
	}
	return keys, nil
}

// MarkAllKeysDue makes every issuer's keys due at once.
func (s *Store) MarkAllKeysDue(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `update issuer_key_schedule set due_at = '-infinity' where due_at > '-infinity'`); err != nil {
		return fmt.Errorf("mark all keys due: %w", mapError(err))
	}
	return nil
}

// KeyChangeMark is the oldest transaction still running: every write after
// this call is by it or a later one.
func (s *Store) KeyChangeMark(ctx context.Context) (uint64, error) {
	var mark string
	if err := s.pool.QueryRow(ctx, `select pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&mark); err != nil {
		return 0, fmt.Errorf("read key change mark: %w", mapError(err))
	}
	return strconv.ParseUint(mark, 10, 64)
}

// KeysChangedSince reads, in one statement and so one snapshot, the
// issuers written by a transaction at or after mark and the oldest
// transaction still running: every transaction below it had finished, and
// its writes are in this read.
func (s *Store) KeysChangedSince(ctx context.Context, mark uint64) (map[string]uint64, uint64, error) {
	var next string
	var names, xids []string
	err := s.pool.QueryRow(ctx, `with written as (
    select issuer_name, changed_xid::text as xid from issuer_key_schedule where changed_xid >= $1::text::xid8)
select pg_snapshot_xmin(pg_current_snapshot())::text,
    array(select issuer_name from written order by issuer_name), array(select xid from written order by issuer_name)`,
		strconv.FormatUint(mark, 10)).Scan(&next, &names, &xids)
	if err != nil {
		return nil, 0, fmt.Errorf("list issuers whose keys changed: %w", mapError(err))
	}
	versions := make(map[string]uint64, len(names))
	for i, name := range names {
		if versions[name], err = strconv.ParseUint(xids[i], 10, 64); err != nil {
			return nil, 0, err
		}
	}
	n, err := strconv.ParseUint(next, 10, 64)
	return versions, n, err
}

func scanKey(row pgx.CollectableRow) (store.SigningKey, error) {
	var k store.SigningKey
	var state string
	var activateAt, activatedAt, retiredAt, deleteAt *time.Time
	err := row.Scan(&k.ID, &k.IssuerName, &k.Algorithm, &state, &k.PublicJWK, &k.SealedPrivateKey, &k.KEKID, &k.CreatedAt,
		&activateAt, &activatedAt, &retiredAt, &deleteAt)
	k.State = store.KeyState(state)
	k.ActivateAt, k.ActivatedAt, k.RetiredAt, k.DeleteAt = deref(activateAt), deref(activatedAt), deref(retiredAt), deref(deleteAt)
	return k, err
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ListSigningKeys returns an issuer's keys, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error) {
	keys, err := listKeys(ctx, s.pool, issuerName)
	if err != nil {
		return nil, fmt.Errorf("list signing keys of issuer %q: %w", issuerName, mapError(err))
	}
	return keys, nil
}

// UpdateSigningKeys rewrites an issuer's keys under the issuer's row lock,
// which serializes every writer of that issuer's keys on every node.
func (s *Store) UpdateSigningKeys(ctx context.Context, issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	var stored []store.SigningKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `select 1 from issuers where name = $1 for update`, issuerName).Scan(&one); err != nil {
			return err
		}
		current, err := listKeys(ctx, tx, issuerName)
		if err != nil {
			return err
		}
		next, err := update(slices.Clone(current))
		if err != nil {
			return err
		}
		if err := writeKeys(ctx, tx, issuerName, current, next); err != nil {
			return err
		}
		stored, err = listKeys(ctx, tx, issuerName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update signing keys of issuer %q: %w", issuerName, mapError(err))
	}
	return stored, nil
}

// writeKeys replaces an issuer's keys current with next inside tx, which
// holds the issuer's row lock.
func writeKeys(ctx context.Context, tx pgx.Tx, issuerName string, current, next []store.SigningKey) error {
	if err := checkOneActive(issuerName, next); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, k := range next {
		keep[k.ID] = true
	}
	existing := map[string]bool{}
	for _, k := range current {
		existing[k.ID] = true
		if !keep[k.ID] {
			if _, err := tx.Exec(ctx, `delete from signing_keys where kid = $1`, k.ID); err != nil {
				return err
			}
		}
	}
	// Keys leaving the active state are written before the one entering
	// it, so the one-active-key index never sees two.
	next = slices.Clone(next)
	slices.SortStableFunc(next, func(a, b store.SigningKey) int {
		return boolOrder(a.State == store.KeyActive, b.State == store.KeyActive)
	})
	for _, k := range next {
		var err error
		if existing[k.ID] {
			_, err = tx.Exec(ctx, `
update signing_keys set algorithm = $2, state = $3, public_jwk = $4, sealed_private_key = $5, kek_id = $6,
    activate_at = $7, activated_at = $8, retired_at = $9, delete_at = $10
where kid = $1 and issuer_name = $11`, k.ID, k.Algorithm, string(k.State), k.PublicJWK, k.SealedPrivateKey, k.KEKID,
				nullTime(k.ActivateAt), nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.DeleteAt), issuerName)
		} else {
			_, err = tx.Exec(ctx, `
insert into signing_keys (kid, issuer_name, algorithm, state, public_jwk, sealed_private_key, kek_id,
    activate_at, activated_at, retired_at, delete_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, k.ID, issuerName, k.Algorithm, string(k.State), k.PublicJWK,
				k.SealedPrivateKey, k.KEKID, nullTime(k.ActivateAt), nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.DeleteAt))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkOneActive(issuerName string, keys []store.SigningKey) error {
	active := 0
	for _, k := range keys {
		if k.State == store.KeyActive {
			active++
		}
	}
	if active > 1 {
		return fmt.Errorf("issuer %q would have %d active keys: %w", issuerName, active, store.ErrConflict)
	}
	return nil
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// errDryRun rolls back the transaction of a dry run.
var errDryRun = errors.New("dry run")

// ImportIssuer writes an imported issuer with its roles, clients and keys
// in one transaction, the rows sent in pipelined batches so that a realm
// of ten thousand clients takes seconds; a dry run rolls back.
func (s *Store) ImportIssuer(ctx context.Context, imp store.IssuerImport, dryRun bool) ([]store.ImportItem, error) {
	name := imp.Issuer.Name
	var items []store.ImportItem
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		items = nil
		// The foreign-key checks of the rows this transaction adds run
		// plans this connection may have cached while the tables were
		// small: a sequential scan, which over ten thousand new clients
		// costs a minute instead of a second. Custom plans see the tables
		// as they grow.
		if _, err := tx.Exec(ctx, `set local plan_cache_mode = force_custom_plan`); err != nil {
			return err
		}
		_, result, changed, err := putIssuer(ctx, tx, imp.Issuer, 0)
		if err != nil {
			return err
		}
		items = append(items, store.ImportItem{Kind: store.ImportIssuerKind, Name: name, Result: result, Changed: changed})
		roleItems, roles, err := importRoles(ctx, tx, name, imp.Roles)
		if err != nil {
			return err
		}
		items = append(items, roleItems...)
		clientItems, err := importClients(ctx, tx, name, imp.Clients, roles)
		if err != nil {
			return err
		}
		items = append(items, clientItems...)
		if imp.Keys != nil {
			current, err := listKeys(ctx, tx, name)
			if err != nil {
				return err
			}
			next, err := imp.Keys(slices.Clone(current))
			if err != nil {
				return err
			}
			items = append(items, store.KeyChanges(current, next)...)
			if err := writeKeys(ctx, tx, name, current, next); err != nil {
				return err
			}
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, fmt.Errorf("import issuer %q: %w", name, mapError(err))
	}
	return items, nil
}

// issuerRoles reads an issuer's roles.
func issuerRoles(ctx context.Context, tx pgx.Tx, issuerName string) (store.RolesByName, error) {
	rows, err := tx.Query(ctx, `select role_id, client_id, name, description from roles where issuer_name = $1`, issuerName)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Role, error) {
		r := store.Role{IssuerName: issuerName}
		return r, row.Scan(&r.ID, &r.ClientID, &r.Name, &r.Description)
	})
	if err != nil {
		return nil, err
	}
	return store.IndexRoles(list), nil
}

// importRoles creates the imported roles the issuer lacks and updates the
// descriptions of those it has; it returns the issuer's roles after.
func importRoles(ctx context.Context, tx pgx.Tx, issuerName string, imported []store.Role) ([]store.ImportItem, store.RolesByName, error) {
	roles, err := issuerRoles(ctx, tx, issuerName)
	if err != nil {
		return nil, nil, err
	}
	items, create, update := roles.PlanRoles(imported)
	if len(create)+len(update) == 0 {
		return items, roles, nil
	}
	batch := &pgx.Batch{}
	for _, r := range create {
		batch.Queue(`insert into roles (issuer_name, client_id, name, description) values ($1, $2, $3, $4)`,
			issuerName, r.ClientID, r.Name, r.Description)
	}
	for _, r := range update {
		batch.Queue(`update roles set description = $2 where role_id = $1`, r.ID, r.Description)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, nil, err
	}
	roles, err = issuerRoles(ctx, tx, issuerName)
	return items, roles, err
}

// importClients creates or updates the imported clients, their new
// secrets and their mappings.
func importClients(ctx context.Context, tx pgx.Tx, issuerName string, imported []store.Client, roles store.RolesByName) ([]store.ImportItem, error) {
	stored, err := getClients(ctx, tx, `c.issuer_name = $1`, issuerName)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Client, len(stored))
	for i := range stored {
		byID[stored[i].ID] = &stored[i]
	}
	var items []store.ImportItem
	batch := &pgx.Batch{}
	for _, c := range imported {
		c.IssuerName = issuerName
		if c.RoleMappings, err = roles.Resolve(c.RoleMappings); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		if c.ScopeMappings, err = roles.Resolve(c.ScopeMappings); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		current := byID[c.ID]
		next, changed := store.MergeImportedClient(current, c)
		item := store.ImportItem{Kind: store.ImportClientKind, Name: c.ID, Result: store.Unchanged, Changed: changed}
		switch {
		case current == nil:
			item.Result = store.Created
			batch.Queue(`
insert into clients (issuer_name, client_id, internal_id, service_account_id, name, scopes, optional_scopes, roles, audience,
                     token_lifetime_seconds, enabled, public_jwk, jwks_uri, full_scope_allowed)
values ($1, $2, coalesce(nullif($3, ''), gen_random_uuid()::text), coalesce(nullif($4, ''), gen_random_uuid()::text),
        $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				issuerName, next.ID, next.InternalID, next.ServiceAccountID, next.Name, nonNil(next.Scopes), nonNil(next.OptionalScopes),
				nonNil(next.Roles), next.Audience, toSeconds(next.TokenLifetime), next.Enabled, nullJSON(next.PublicJWK), next.JWKSURI,
				next.FullScopeAllowed)
		case len(changed) > 0:
			item.Result = store.Updated
			batch.Queue(`
update clients set internal_id = $3, service_account_id = $4, name = $5, scopes = $6, optional_scopes = $7, roles = $8,
    audience = $9, token_lifetime_seconds = $10, enabled = $11, public_jwk = $12, jwks_uri = $13, full_scope_allowed = $14,
    updated_at = now()
where issuer_name = $1 and client_id = $2`,
				issuerName, next.ID, next.InternalID, next.ServiceAccountID, next.Name, nonNil(next.Scopes), nonNil(next.OptionalScopes),
				nonNil(next.Roles), next.Audience, toSeconds(next.TokenLifetime), next.Enabled, nullJSON(next.PublicJWK), next.JWKSURI,
				next.FullScopeAllowed)
		}
		items = append(items, item)
		if item.Result == store.Unchanged {
			continue
		}
		if current == nil || slices.Contains(changed, "Secrets") {
			if current != nil {
				batch.Queue(`delete from client_secrets where issuer_name = $1 and client_id = $2`, issuerName, next.ID)
			}
			for _, sec := range next.Secrets {
				batch.Queue(`
insert into client_secrets (issuer_name, client_id, secret_id, digest, hint, expires_at, created_at)
values ($1, $2, $3, $4, $5, $6, coalesce($7, now()))`, issuerName, next.ID, sec.ID, sec.Digest, sec.Hint, nullTime(sec.ExpiresAt), nullTime(sec.CreatedAt))
			}
		}
		if current != nil && !slices.Contains(changed, "RoleMappings") && !slices.Contains(changed, "ScopeMappings") {
			continue
		}
		if current != nil {
			batch.Queue(`delete from role_mappings where issuer_name = $1 and client_id = $2`, issuerName, next.ID)
		}
		for kind, refs := range map[string][]store.RoleRef{"role": next.RoleMappings, "scope": next.ScopeMappings} {
			for _, ref := range refs {
				batch.Queue(`insert into role_mappings (issuer_name, client_id, kind, role_id) values ($1, $2, $3, $4) on conflict do nothing`,
					issuerName, next.ID, kind, ref.ID)
			}
		}
	}
	if batch.Len() == 0 {
		return items, nil
	}
	return items, tx.SendBatch(ctx, batch).Close()
}

// TryLock takes a PostgreSQL session advisory lock on a connection of its
// own; the lock lives exactly as long as that connection.
func (s *Store) TryLock(ctx context.Context, name string) (func(), <-chan struct{}, bool, error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("lock %q: %w", name, err)
	}
	conn := pooled.Hijack()
	var ok bool
	if err := conn.QueryRow(ctx, `select pg_try_advisory_lock(hashtextextended($1, 0))`, "authz:"+name).Scan(&ok); err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, nil, false, fmt.Errorf("lock %q: %w", name, err)
		}
		return nil, nil, false, nil
	}
	lost := make(chan struct{})
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(lost)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				pingCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := conn.Ping(pingCtx)
				cancel()
				if err != nil {
					s.log.Warn("lost a cluster lock with its connection", "lock", name, "err", err)
					return
				}
			}
		}
	}()
	unlock := func() {
		once.Do(func() {
			close(stop)
			<-lost
			// Unlocked before the session closes: a closing backend lets go
			// of its locks only when it exits, after Close has returned, so
			// an immediate TryLock elsewhere could still find it held.
			// Closing releases it anyway if the unlock cannot be sent.
			unlockCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = conn.Exec(unlockCtx, `select pg_advisory_unlock(hashtextextended($1, 0))`, "authz:"+name)
			conn.Close(unlockCtx)
		})
	}
	return unlock, lost, true, nil
}

// ImportClients bulk-loads n clients, made by client(i), with PostgreSQL's
// COPY: a million clients load in seconds. It is for seeding benchmarks and
// migrations, so it skips the per-row change triggers (which needs a
// superuser) and announces one change of everything at the end.
func (s *Store) ImportClients(ctx context.Context, n int, client func(i int) store.Client) error {
	return s.bulkLoad(ctx, "import clients", func(tx pgx.Tx) error {
		now := time.Now()
		i := 0
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"clients"},
			[]string{"issuer_name", "client_id", "name", "scopes", "roles", "audience", "token_lifetime_seconds", "enabled", "created_at", "updated_at", "jwks_uri"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				c := client(i)
				i++
				return []any{c.IssuerName, c.ID, c.Name, nonNil(c.Scopes), nonNil(c.Roles), c.Audience, toSeconds(c.TokenLifetime), c.Enabled, now, now, c.JWKSURI}, nil
			})); err != nil {
			return fmt.Errorf("copy clients: %w", err)
		}
		i, j := 0, 0
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"client_secrets"},
			[]string{"issuer_name", "client_id", "secret_id", "digest", "hint", "created_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				for i < n {
					c := client(i)
					if j < len(c.Secrets) {
						sec := c.Secrets[j]
						j++
						return []any{c.IssuerName, c.ID, sec.ID, sec.Digest, sec.Hint, now}, nil
					}
					i, j = i+1, 0
				}
				return nil, nil
			})); err != nil {
			return fmt.Errorf("copy client secrets: %w", err)
		}
		return nil
	})
}

// bulkLoad runs load in one transaction without the change triggers (a
// row-by-row notification would flood every node; skipping them needs a
// superuser), then tells every node that everything changed.
func (s *Store) bulkLoad(ctx context.Context, what string, load func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `set local session_replication_role = replica`); err != nil {
			return fmt.Errorf("skip change triggers (needs a superuser): %w", err)
		}
		if err := load(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `select pg_notify($1, '{"kind":"all"}')`, changesChannel)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapError(err))
	}
	return nil
}

// ImportIssuers loads n issuers, each with its signing keys, in one
// transaction through COPY, for benchmarks of many tenants (authz-bench
// seed --issuers).
func (s *Store) ImportIssuers(ctx context.Context, n int, issuer func(i int) (store.Issuer, []store.SigningKey)) error {
	return s.bulkLoad(ctx, "import issuers", func(tx pgx.Tx) error {
		var keys []store.SigningKey
		i := 0
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"issuers"},
			[]string{"name", "description", "available_scopes", "client_roles", "audience", "token_lifetime_seconds",
				"signing_algorithm", "client_authenticators", "key_rotation_seconds", "key_publish_lead_seconds", "key_retire_seconds",
				"url_style", "anonymous_registration"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				iss, issKeys := issuer(i)
				i++
				keys = append(keys, issKeys...)
				return issuerValues(iss), nil
			})); err != nil {
			return fmt.Errorf("copy issuers: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"signing_keys"},
			[]string{"kid", "issuer_name", "algorithm", "state", "public_jwk", "sealed_private_key", "kek_id",
				"activate_at", "activated_at", "retired_at", "delete_at"},
			pgx.CopyFromSlice(len(keys), func(j int) ([]any, error) {
				k := keys[j]
				return []any{k.ID, k.IssuerName, k.Algorithm, string(k.State), k.PublicJWK, k.SealedPrivateKey, k.KEKID,
					nullTime(k.ActivateAt), nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.DeleteAt)}, nil
			})); err != nil {
			return fmt.Errorf("copy signing keys: %w", err)
		}
		// The triggers that make each issuer's schedule row are skipped.
		if _, err := tx.Exec(ctx, `insert into issuer_key_schedule (issuer_name) select name from issuers
on conflict (issuer_name) do nothing`); err != nil {
			return fmt.Errorf("schedule imported issuers' keys: %w", err)
		}
		return nil
	})
}

// RecordAssertion remembers a jti; the primary key refuses a second use.
func (s *Store) RecordAssertion(ctx context.Context, issuerName, clientID, jti string, expiresAt time.Time) error {
	if _, err := s.pool.Exec(ctx, `
insert into client_assertion_jtis (issuer_name, client_id, jti, expires_at) values ($1, $2, $3, $4)`,
		issuerName, clientID, jti, expiresAt); err != nil {
		return fmt.Errorf("record assertion of client %q: %w", clientID, mapError(err))
	}
	return nil
}

// DeleteExpiredAssertions forgets expired jtis.
func (s *Store) DeleteExpiredAssertions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `delete from client_assertion_jtis where expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired assertions: %w", mapError(err))
	}
	return tag.RowsAffected(), nil
}

// AppendAudit records an audit entry.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if _, err := s.pool.Exec(ctx, `
insert into audit_log (actor, actor_issuer, action, resource, outcome, status, detail) values ($1, $2, $3, $4, $5, $6, $7)`,
		e.Actor, e.ActorIssuer, e.Action, e.Resource, e.Outcome, e.Status, e.Detail); err != nil {
		return fmt.Errorf("append audit entry: %w", mapError(err))
	}
	return nil
}

// ListAudit returns audit entries newest first.
func (s *Store) ListAudit(ctx context.Context, page store.Page) ([]store.AuditEntry, error) {
	var before *int64
	if page.After != "" {
		id, err := strconv.ParseInt(page.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: cursor %q is not an entry id", page.After)
		}
		before = &id
	}
	rows, err := s.pool.Query(ctx, `
select id, at, actor, actor_issuer, action, resource, outcome, status, detail from audit_log
where $1::bigint is null or id < $1
order by id desc limit $2`, before, pageLimit(page))
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", mapError(err))
	}
	entries, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", mapError(err))
	}
	return entries, nil
}

// changesChannel is the NOTIFY channel the schema's triggers write to.
const changesChannel = "authz_changes"

// Watch listens on a connection of its own and reconnects after a failure;
// each (re)connection is announced as ChangeAll, since notifications sent
// while no one listened are lost.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("change notifications interrupted; reconnecting", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		// One connection attempt a second is nothing to PostgreSQL, and
		// every second without LISTEN is a second caches may miss changes.
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Store) listen(ctx context.Context, fn func(store.Change)) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A listening connection must never go back to the pool, so it leaves
	// the pool for good and is closed when listening ends.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "listen "+changesChannel); err != nil {
		return err
	}
	s.log.Info("listening for changes")
	fn(store.Change{Kind: store.ChangeAll})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var payload struct {
			Kind   string `json:"kind"`
			Issuer string `json:"issuer"`
			Client string `json:"client"`
		}
		if json.Unmarshal([]byte(n.Payload), &payload) != nil {
			fn(store.Change{Kind: store.ChangeAll})
			continue
		}
		fn(store.Change{Kind: store.ChangeKind(payload.Kind), Issuer: payload.Issuer, ClientID: payload.Client})
	}
}

// nonNil keeps PostgreSQL's not-null array columns happy with Go's nil slice.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nullBytes stores an absent digest as SQL null.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
