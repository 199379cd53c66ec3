package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/authz-dev/authz/api/client"
)

// cliConfig is what `authz login` keeps between commands: where the server
// is, and the admin client's credentials, so that expired tokens renew
// themselves. It holds a secret, so it is readable by its owner only.
type cliConfig struct {
	AdminURL     string    `json:"adminURL"`
	PublicURL    string    `json:"publicURL"`
	TokenURL     string    `json:"tokenURL"`
	ClientID     string    `json:"clientID"`
	ClientSecret string    `json:"clientSecret"`
	AccessToken  string    `json:"accessToken,omitempty"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
}

// configPath is $AUTHZ_CONFIG, or authz/config.json in the user's
// configuration directory.
func (a *cli) configPath() (string, error) {
	if p := a.getenv("AUTHZ_CONFIG"); p != "" {
		return p, nil
	}
	dir := a.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := a.getenv("HOME")
		if home == "" {
			return "", errors.New("cannot place the CLI configuration: set AUTHZ_CONFIG or HOME")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "authz", "config.json"), nil
}

// errNotLoggedIn tells the operator what to do first.
var errNotLoggedIn = errors.New("not logged in: run `authz login` first")

func loadConfig(path string) (cliConfig, error) {
	var c cliConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, errNotLoggedIn
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is corrupt; run `authz login` again: %w", path, err)
	}
	return c, nil
}

// saveConfig writes the configuration so that only its owner can read it:
// into a new temporary file, created exclusively with mode 0600 beside the
// target (never an existing file, whose mode would be kept, and never
// through a symlink), then renamed over it. The directory is made 0700.
func saveConfig(path string, c cliConfig) error {
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The directory is tightened when it is authz's own: made here, or the
	// default ~/.config/authz. A directory named by $AUTHZ_CONFIG may hold
	// other things and is the operator's to set.
	if os.IsNotExist(statErr) || filepath.Base(dir) == "authz" {
		if err := ownDirectory(dir); err != nil {
			return err
		}
	}
	if info, err := os.Lstat(path); err == nil && info.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; refusing to write credentials through it", path)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ownDirectory tightens the configuration's directory to 0700, unless it is
// a shared one such as /tmp (sticky), which is not ours to change.
func ownDirectory(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.Mode()&os.ModeSticky != 0 || info.Mode().Perm() == 0o700 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("make %s private to you: %w", dir, err)
	}
	return nil
}

// httpClient is what the CLI calls servers with.
func httpClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// session is a logged-in admin: its configuration and a client of the
// admin API whose renewed tokens are saved for the next command.
type session struct {
	cfg   cliConfig
	admin *client.Client
}

func (a *cli) openSession() (*session, error) {
	path, err := a.configPath()
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	return newSession(path, cfg), nil
}

func newSession(path string, cfg cliConfig) *session {
	s := &session{cfg: cfg}
	tokens := &client.ClientCredentials{
		TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTP: httpClient(),
		OnRenew: func(token string, expiresAt time.Time) error {
			s.cfg.AccessToken, s.cfg.ExpiresAt = token, expiresAt
			return saveConfig(path, s.cfg)
		},
	}
	tokens.Reuse(cfg.AccessToken, cfg.ExpiresAt)
	s.admin = client.New(cfg.AdminURL, tokens, httpClient())
	return s
}
