package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
	"github.com/authz-dev/authz/store/postgres"
)

// backend is the store and key machinery every command that touches state
// shares.
type backend struct {
	store store.Store
	keys  *keys.Manager
	close func()
	// failedQueries counts failed database statements; nil in memory.
	failedQueries func() int64
}

// openBackend opens PostgreSQL (migrating it) with the operator's KEKs, or,
// with no database URL, an in-memory store with a KEK made for this run.
//
// keyringSize bounds how many issuers' keys are held in memory (0: the
// default).
func openBackend(ctx context.Context, databaseURL, kekValue string, schedule keys.Schedule, keyringSize int, log *slog.Logger, pgOpts ...postgres.Option) (*backend, error) {
	be := &backend{close: func() {}}
	var keks [][]byte
	if databaseURL == "" {
		be.store = memory.New()
		kek := make([]byte, keys.KEKSize)
		_, _ = rand.Read(kek)
		keks = [][]byte{kek}
	} else {
		var err error
		if keks, err = loadKEKs(kekValue); err != nil {
			return nil, err
		}
		if err := postgres.Migrate(ctx, databaseURL); err != nil {
			return nil, err
		}
		pg, err := postgres.Open(ctx, databaseURL, log, pgOpts...)
		if err != nil {
			return nil, err
		}
		be.store, be.close, be.failedQueries = pg, pg.Close, pg.FailedQueries
	}
	sealer, err := keys.NewSealer(keks[0], keks[1:]...)
	if err != nil {
		be.close()
		return nil, err
	}
	be.keys = keys.NewManager(be.store, sealer, keys.NewKeyring(keyringSize), schedule, nil)
	return be, nil
}

// databaseFlags are --database-url and --kek.
type databaseFlags struct{ url, kek string }

// register adds the flags to cmd; kekNote ends the --kek help.
func (f *databaseFlags) register(cmd *cobra.Command, kekNote string) {
	fs := cmd.Flags()
	fs.StringVar(&f.url, "database-url", "", "PostgreSQL URL (postgres://user@host:5432/db)")
	bindEnv(fs, "database-url", "AUTHZ_DATABASE_URL")
	fs.StringVar(&f.kek, "kek", "", kekHelp+kekNote)
	bindEnv(fs, "kek", "AUTHZ_KEK")
}

// databaseCommand is a command that works on the database directly rather
// than through the admin API: it migrates and opens it, runs do, and closes
// it. Such commands create at most a first key, so the key schedule is
// irrelevant to them.
func (a *cli) databaseCommand(use, short, kekNote string, do func(ctx context.Context, be *backend) error) *cobra.Command {
	var db databaseFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			be, err := openBackend(cmd.Context(), db.url, db.kek, keys.DefaultSchedule(5*time.Minute), 0, newLogger(a.stderr, "text", slog.LevelInfo))
			if err != nil {
				return err
			}
			defer be.close()
			return do(cmd.Context(), be)
		},
	}
	db.register(cmd, kekNote)
	require(cmd.Flags(), "database-url", "kek")
	return cmd
}

const kekHelp = "key-encryption keys, comma-separated, newest first: each base64 of 32 bytes, or the path of a file holding one per line. New keys are sealed under the first"

// loadKEKs reads the key-encryption keys, newest first: each entry is base64
// text or a file holding base64 lines or 32 raw bytes. Errors never repeat
// a value.
func loadKEKs(value string) ([][]byte, error) {
	var keks [][]byte
	for i, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		if kek, ok := decodeKEK([]byte(entry)); ok {
			keks = append(keks, kek)
			continue
		}
		content, err := os.ReadFile(entry)
		if err != nil {
			return nil, fmt.Errorf("--kek entry %d is neither base64 of 32 bytes nor a readable file", i+1)
		}
		if len(content) == keys.KEKSize {
			keks = append(keks, content)
			continue
		}
		for _, line := range strings.Fields(string(content)) {
			kek, ok := decodeKEK([]byte(line))
			if !ok {
				return nil, fmt.Errorf("the --kek file of entry %d holds a line that is not base64 of 32 bytes", i+1)
			}
			keks = append(keks, kek)
		}
	}
	if len(keks) == 0 {
		return nil, errors.New("--kek holds no key")
	}
	return keks, nil
}

func decodeKEK(text []byte) ([]byte, bool) {
	s := strings.TrimSpace(string(text))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if kek, err := enc.DecodeString(s); err == nil && len(kek) == keys.KEKSize {
			return kek, true
		}
	}
	return nil, false
}
