package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cliConfig is what `authz login` keeps between commands. It holds the admin
// client's secret so that expired tokens renew themselves, so it is written
// readable by its owner only.
type cliConfig struct {
	AdminURL     string    `json:"adminURL"`
	TokenURL     string    `json:"tokenURL"`
	ClientID     string    `json:"clientID"`
	ClientSecret string    `json:"clientSecret"`
	AccessToken  string    `json:"accessToken"`
	ExpiresAt    time.Time `json:"expiresAt"`
}

// cliConfigPath is AUTHZ_CONFIG, or authz/config.json in the user's
// configuration directory.
func cliConfigPath(getenv func(string) string) (string, error) {
	if p := getenv("AUTHZ_CONFIG"); p != "" {
		return p, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("cannot place the CLI configuration: set AUTHZ_CONFIG or HOME")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "authz", "config.json"), nil
}

func loadCLIConfig(path string) (cliConfig, error) {
	var c cliConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, errors.New("not logged in: run `authz login` first")
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is corrupt; run `authz login` again: %w", path, err)
	}
	return c, nil
}

func saveCLIConfig(path string, c cliConfig) error {
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

// tokenResponse is RFC 6749's successful token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// requestToken runs the client-credentials grant with client_secret_basic.
// It returns the raw answer too, for `authz token` to print.
func requestToken(ctx context.Context, hc *http.Client, tokenURL, clientID, secret, scope string) (tokenResponse, []byte, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return tokenResponse{}, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var oauthErr struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &oauthErr)
		return tokenResponse{}, raw, fmt.Errorf("token request refused (%s): %s %s", resp.Status, oauthErr.Error, oauthErr.Description)
	}
	var tok tokenResponse
	if err := json.Unmarshal(raw, &tok); err != nil {
		return tokenResponse{}, raw, fmt.Errorf("token endpoint answered no JSON: %w", err)
	}
	return tok, raw, nil
}

// adminSession calls the admin API as the logged-in client.
type adminSession struct {
	cfg  cliConfig
	path string
	hc   *http.Client
}

func openAdminSession(getenv func(string) string) (*adminSession, error) {
	path, err := cliConfigPath(getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := loadCLIConfig(path)
	if err != nil {
		return nil, err
	}
	return &adminSession{cfg: cfg, path: path, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// token returns a valid admin token, renewing it shortly before it expires.
func (s *adminSession) token(ctx context.Context) (string, error) {
	if s.cfg.AccessToken != "" && time.Until(s.cfg.ExpiresAt) > 30*time.Second {
		return s.cfg.AccessToken, nil
	}
	tok, _, err := requestToken(ctx, s.hc, s.cfg.TokenURL, s.cfg.ClientID, s.cfg.ClientSecret, "")
	if err != nil {
		return "", fmt.Errorf("renew the admin token (run `authz login` again if the client changed): %w", err)
	}
	s.cfg.AccessToken, s.cfg.ExpiresAt = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	return tok.AccessToken, saveCLIConfig(s.path, s.cfg)
}

// apiError is a problem+json answer, phrased for a terminal.
type apiError struct {
	Status int
	Detail string
	Fields []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	}
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

// call sends one admin request; out, when not nil, receives the JSON answer.
func (s *adminSession) call(ctx context.Context, method, path string, body, out any) error {
	token, err := s.token(ctx)
	if err != nil {
		return err
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(s.cfg.AdminURL, "/")+"/admin/v1"+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 400 {
		e := &apiError{Status: resp.StatusCode}
		var p struct {
			Detail string `json:"detail"`
			Errors []struct {
				Field  string `json:"field"`
				Reason string `json:"reason"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(raw, &p)
		e.Detail, e.Fields = p.Detail, p.Errors
		return e
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// isStatus reports whether err is an admin API answer with that status.
func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == status
}
