package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authz-dev/authz/credential"
)

// OAuthError is a token endpoint's RFC 6749 §5.2 refusal.
type OAuthError struct {
	Status      int
	Code        string
	Description string
}

func (e *OAuthError) Error() string {
	return fmt.Sprintf("token request refused (%d %s): %s %s", e.Status, http.StatusText(e.Status), e.Code, e.Description)
}

// RequestToken runs the client-credentials grant with client_secret_basic
// (the id and secret form-encoded, as RFC 6749 §2.3.1 says). It returns the
// raw answer too, for callers that print it.
func RequestToken(ctx context.Context, hc *http.Client, tokenURL, clientID, secret string, scopes []string) (credential.TokenResponse, []byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return credential.TokenResponse{}, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		return credential.TokenResponse{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return credential.TokenResponse{}, nil, fmt.Errorf("read the token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &body)
		return credential.TokenResponse{}, raw, &OAuthError{Status: resp.StatusCode, Code: body.Error, Description: body.Description}
	}
	var tok credential.TokenResponse
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return credential.TokenResponse{}, raw, fmt.Errorf("the token endpoint answered no token")
	}
	return tok, raw, nil
}

// renewBefore is how long before expiry a token is renewed, so that it
// does not expire on its way to the server.
const renewBefore = 30 * time.Second

// ClientCredentials is a TokenSource that gets the admin token with the
// client-credentials grant and renews it shortly before it expires.
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	HTTP         *http.Client
	// OnRenew, when set, is told of every new token, so that a caller can
	// keep it between runs.
	OnRenew func(token string, expiresAt time.Time) error

	mu        sync.Mutex
	token     string
	expiresAt time.Time
}

// Reuse starts the source with a token obtained earlier.
func (s *ClientCredentials) Reuse(token string, expiresAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.expiresAt = token, expiresAt
}

// Forget drops token if it is the current one: the server refused it.
func (s *ClientCredentials) Forget(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == token {
		s.token, s.expiresAt = "", time.Time{}
	}
}

// Token returns the current token, renewing it when it is about to expire.
func (s *ClientCredentials) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Until(s.expiresAt) > renewBefore {
		return s.token, nil
	}
	tok, _, err := RequestToken(ctx, s.HTTP, s.TokenURL, s.ClientID, s.ClientSecret, nil)
	if err != nil {
		return "", fmt.Errorf("get an admin token: %w", err)
	}
	s.token, s.expiresAt = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	if s.OnRenew != nil {
		if err := s.OnRenew(s.token, s.expiresAt); err != nil {
			return "", err
		}
	}
	return s.token, nil
}
