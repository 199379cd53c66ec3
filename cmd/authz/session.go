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

func saveConfig(path string, c cliConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
