package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
	"github.com/authz-dev/authz/store/storetest"
)

func openMigrated(t *testing.T) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestPostgresStoreConforms(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openMigrated(t) })
}

func TestMigrateTwiceConcurrentlyIsSafe(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- postgres.Migrate(ctx, url) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatalf("Migrate on an up-to-date schema: %v", err)
	}
}

// The README tells operators of large nodes to bound the pool in the URL;
// PostgreSQL refuses pool_max_conns as a parameter, so every connection,
// the migration's too, must take the URL as the pool reads it.
func TestPoolSettingsInTheURLWorkForMigrationsToo(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	url += sep + "pool_max_conns=8&pool_min_conns=1"
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatalf("Migrate with pool settings: %v", err)
	}
	s, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("Open with pool settings: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDoesNotEchoThePassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:hunter2-secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=bogus", nil)
	if err == nil {
		t.Fatal("Open with a malformed URL succeeded")
	}
	if got := err.Error(); strings.Contains(got, "hunter2-secret") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

func TestUnreachableDatabaseIsReportedAsUnavailableAndRecovers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, url)
	st, err := postgres.Open(ctx, proxy.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.PutIssuer(ctx, store.Issuer{Name: "payments", TokenLifetime: time.Minute}, 0); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := st.GetIssuer(shortCtx, "payments"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read while unreachable: %v, want ErrUnavailable", err)
	}
	if _, _, err := st.PutIssuer(shortCtx, store.Issuer{Name: "billing", TokenLifetime: time.Minute}, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("write while unreachable: %v, want ErrUnavailable", err)
	}
	if err := st.Ping(shortCtx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ping while unreachable: %v, want ErrUnavailable", err)
	}
	proxy.Restore()
	// The pool reconnects by itself.
	if _, err := st.GetIssuer(ctx, "payments"); err != nil {
		t.Fatalf("read after recovery: %v", err)
	}
	if _, err := st.GetIssuer(ctx, "billing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the write refused during the outage exists: %v", err)
	}
}
