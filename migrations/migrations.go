// Package migrations holds the numbered SQL files that build the PostgreSQL
// schema, embedded so that the binary carries its own schema.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// Files returns the migration files, named NNN_description.sql.
func Files() fs.FS { return files }
