package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// A bulk load writes many issuers at one key version; statistics taken
// before it know only versions held by one issuer each. Recording due
// times must then still find each issuer by its name, never read every
// issuer at that version for each one in the batch.
func TestRecordingDueTimesNeverSearchesByVersion(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const insert = `insert into issuers (name, token_lifetime_seconds, signing_algorithm, client_authenticators)
select $1 || g, 60, 'ES256', '{}' from generate_series(1, $2::int) g`
	for i := range 300 { // one version each
		if _, err := conn.Exec(ctx, insert, fmt.Sprintf("early-%d-", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `analyze issuer_key_schedule`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, insert, "bulk-", 10_000); err != nil { // one version for all
		t.Fatal(err)
	}
	// A prepared statement, as the pool's are, so that the generic plan,
	// which every execution after the fifth may use, is the one explained.
	if _, err := conn.Exec(ctx, `prepare due(text[], text[], timestamptz[]) as `+setKeysDue); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		if _, err := conn.Exec(ctx, `set plan_cache_mode = `+mode); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `explain execute due('{bulk-1}', '{1}', '{2026-01-01T00:00:00Z}')`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if plan := strings.Join(lines, "\n"); strings.Contains(plan, "issuer_key_schedule_changed") {
			t.Errorf("with %s, recording due times searches by version:\n%s", mode, plan)
		}
	}
}
