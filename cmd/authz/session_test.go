package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTheSavedConfigIsForItsOwnerOnly replays the review's finding: with a
// config.json.tmp already there, mode 0644, os.WriteFile kept its mode and
// the saved admin secret came out world-readable; it also followed
// symlinks.
func TestTheSavedConfigIsForItsOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authz")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path+".tmp", []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := cliConfig{AdminURL: "http://127.0.0.1:1", ClientID: "c-admin", ClientSecret: "a-very-secret-value", ExpiresAt: time.Now()}
	if err := saveConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", p, got, want)
		}
	}
	if got, err := loadConfig(path); err != nil || got.ClientSecret != cfg.ClientSecret {
		t.Fatalf("read back: %+v, %v", got, err)
	}

	// A symlink in the config's place is refused, and what it points to
	// is left alone.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(elsewhere, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked.json")
	if err := os.Symlink(elsewhere, linked); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(linked, cfg); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("saving through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(elsewhere); string(b) != "{}" {
		t.Fatalf("the symlink's target was written: %s", b)
	}
}
