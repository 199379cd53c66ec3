// Package client is the typed Go client of authz's admin API, built on the
// request and response types that package api serves, so that a renamed
// field breaks its callers at compile time. It pages through listings,
// renews its admin token, and returns problem+json answers as *Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authz-dev/authz/api"
)

// TokenSource hands out a valid admin access token.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// forgetter is a TokenSource that can drop a token the server refused (one
// kept from an earlier run, say, that a server upgrade or a client
// re-creation invalidated), so that the next Token call gets a fresh one.
type forgetter interface {
	Forget(token string)
}

// Client calls one server's admin API.
type Client struct {
	base   string
	tokens TokenSource
	http   *http.Client
}

// New returns a client of the admin API at adminURL (the admin listener's
// base URL, without the /admin/v1 prefix). A nil hc means
// http.DefaultClient.
func New(adminURL string, tokens TokenSource, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(adminURL, "/") + api.Prefix, tokens: tokens, http: hc}
}

// Error is a refusal of the admin API: its RFC 7807 problem.
type Error struct {
	Status int
	Title  string
	Detail string
	Fields []api.FieldError
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

// HasStatus reports whether err is an admin API refusal with that status.
func HasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool { return HasStatus(err, http.StatusNotFound) }

// maxAnswerBytes bounds an answer read into memory.
const maxAnswerBytes = 16 << 20

// do sends one request; body, when not nil, is sent as JSON, and out, when
// not nil, receives the JSON answer. A request refused for its token is
// sent once more with a new token when the source can renew it.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, header http.Header, body, out any) (http.Header, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		payload = b
	}
	return c.doPayload(ctx, method, path, query, header, payload, out)
}

// doPayload sends one request with a body already encoded as JSON, once
// more with a fresh token if the server refused the one it had.
func (c *Client) doPayload(ctx context.Context, method, path string, query url.Values, header http.Header, payload []byte, out any) (http.Header, error) {
	token, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, err
	}
	h, err := c.send(ctx, token, method, path, query, header, payload, out)
	if f, ok := c.tokens.(forgetter); ok && HasStatus(err, http.StatusUnauthorized) {
		f.Forget(token)
		if token, err = c.tokens.Token(ctx); err != nil {
			return nil, err
		}
		h, err = c.send(ctx, token, method, path, query, header, payload, out)
	}
	return h, err
}

func (c *Client) send(ctx context.Context, token, method, path string, query url.Values, header http.Header, payload []byte, out any) (http.Header, error) {
	var reader io.Reader
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		var p struct {
			Title  string           `json:"title"`
			Detail string           `json:"detail"`
			Errors []api.FieldError `json:"errors"`
		}
		if json.Unmarshal(raw, &p) == nil {
			e.Title, e.Detail, e.Fields = p.Title, p.Detail, p.Errors
		}
		if e.Detail == "" {
			e.Detail = "the server gave no reason"
		}
		return resp.Header, e
	}
	if text, ok := out.(*[]byte); ok {
		*text = raw
		return resp.Header, nil
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, fmt.Errorf("the answer to %s %s is not what the API describes: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// pageSize is how many items a listing asks for at a time.
const pageSize = 500

// listAll follows nextCursor until the listing ends.
func listAll[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	all := []T{}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(pageSize))
	for {
		var page api.ListResponse[T]
		if _, err := c.do(ctx, http.MethodGet, path, q, nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

func issuerPath(name string) string { return "/issuers/" + url.PathEscape(name) }

func clientPath(issuer, id string) string {
	return issuerPath(issuer) + "/clients/" + url.PathEscape(id)
}

var dryRunQuery = url.Values{"dryRun": {"true"}}

// ListIssuers returns every issuer, ordered by name.
func (c *Client) ListIssuers(ctx context.Context) ([]api.IssuerResponse, error) {
	return listAll[api.IssuerResponse](ctx, c, "/issuers", nil)
}

// GetIssuer reads one issuer.
func (c *Client) GetIssuer(ctx context.Context, name string) (api.IssuerResponse, error) {
	var out api.IssuerResponse
	_, err := c.do(ctx, http.MethodGet, issuerPath(name), nil, nil, nil, &out)
	return out, err
}

// PutIssuer creates or replaces an issuer. A non-zero ifRevision makes the
// write conditional: it fails with 412 if the issuer is at another
// revision.
func (c *Client) PutIssuer(ctx context.Context, name string, req api.IssuerRequest, ifRevision int64) (api.IssuerResponse, error) {
	var header http.Header
	if ifRevision != 0 {
		header = http.Header{"If-Match": {`"` + strconv.FormatInt(ifRevision, 10) + `"`}}
	}
	var out api.IssuerResponse
	_, err := c.do(ctx, http.MethodPut, issuerPath(name), nil, header, req, &out)
	return out, err
}

// DryRunPutIssuer says what PutIssuer would do, and writes nothing.
func (c *Client) DryRunPutIssuer(ctx context.Context, name string, req api.IssuerRequest) (api.DryRunResponse, error) {
	var out api.DryRunResponse
	_, err := c.do(ctx, http.MethodPut, issuerPath(name), dryRunQuery, nil, req, &out)
	return out, err
}

// DeleteIssuer deletes an issuer with its keys; with cascade, its clients
// too, which otherwise make it fail with 409.
func (c *Client) DeleteIssuer(ctx context.Context, name string, cascade bool) error {
	_, err := c.do(ctx, http.MethodDelete, issuerPath(name), url.Values{"cascade": {strconv.FormatBool(cascade)}}, nil, nil, nil)
	return err
}

// ClientFilter narrows a listing of clients.
type ClientFilter struct {
	// Name keeps clients whose name contains it, ignoring case.
	Name string
	// Enabled, when set, keeps clients in that state.
	Enabled *bool
}

// ListClients returns an issuer's clients, ordered by id.
func (c *Client) ListClients(ctx context.Context, issuer string, f ClientFilter) ([]api.ClientResponse, error) {
	q := url.Values{}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	if f.Enabled != nil {
		q.Set("enabled", strconv.FormatBool(*f.Enabled))
	}
	return listAll[api.ClientResponse](ctx, c, issuerPath(issuer)+"/clients", q)
}

// GetClient reads one client, never its secrets.
func (c *Client) GetClient(ctx context.Context, issuer, id string) (api.ClientResponse, error) {
	var out api.ClientResponse
	_, err := c.do(ctx, http.MethodGet, clientPath(issuer, id), nil, nil, nil, &out)
	return out, err
}

// CreateClient registers a client; the answer holds its secret, which the
// server never shows again.
func (c *Client) CreateClient(ctx context.Context, issuer string, req api.CreateClientRequest) (api.CreatedClientResponse, error) {
	var out api.CreatedClientResponse
	_, err := c.do(ctx, http.MethodPost, issuerPath(issuer)+"/clients", nil, nil, req, &out)
	return out, err
}

// DryRunCreateClient says what CreateClient would do, and writes nothing.
func (c *Client) DryRunCreateClient(ctx context.Context, issuer string, req api.CreateClientRequest) (api.DryRunResponse, error) {
	var out api.DryRunResponse
	_, err := c.do(ctx, http.MethodPost, issuerPath(issuer)+"/clients", dryRunQuery, nil, req, &out)
	return out, err
}

// PatchClient changes the settings present in req.
func (c *Client) PatchClient(ctx context.Context, issuer, id string, req api.PatchClientRequest) (api.ClientResponse, error) {
	var out api.ClientResponse
	_, err := c.do(ctx, http.MethodPatch, clientPath(issuer, id), nil, nil, req, &out)
	return out, err
}

// DryRunPatchClient says what PatchClient would do, and writes nothing.
func (c *Client) DryRunPatchClient(ctx context.Context, issuer, id string, req api.PatchClientRequest) (api.DryRunResponse, error) {
	var out api.DryRunResponse
	_, err := c.do(ctx, http.MethodPatch, clientPath(issuer, id), dryRunQuery, nil, req, &out)
	return out, err
}

// DeleteClient deletes a client.
func (c *Client) DeleteClient(ctx context.Context, issuer, id string) error {
	_, err := c.do(ctx, http.MethodDelete, clientPath(issuer, id), nil, nil, nil, nil)
	return err
}

// ListSecrets describes a client's secrets by id and hint.
func (c *Client) ListSecrets(ctx context.Context, issuer, id string) ([]api.SecretResponse, error) {
	var out api.ListResponse[api.SecretResponse]
	_, err := c.do(ctx, http.MethodGet, clientPath(issuer, id)+"/secrets", nil, nil, nil, &out)
	return out.Items, err
}

// AddSecret gives a client a new secret, shown only in the answer.
func (c *Client) AddSecret(ctx context.Context, issuer, id string, req api.CreateSecretRequest) (api.CreatedSecret, error) {
	var out api.CreatedSecret
	_, err := c.do(ctx, http.MethodPost, clientPath(issuer, id)+"/secrets", nil, nil, req, &out)
	return out, err
}

// DeleteSecret revokes one of a client's secrets.
func (c *Client) DeleteSecret(ctx context.Context, issuer, id, secretID string) error {
	_, err := c.do(ctx, http.MethodDelete, clientPath(issuer, id)+"/secrets/"+url.PathEscape(secretID), nil, nil, nil, nil)
	return err
}

// GenerateClientKey makes a key pair for a client's signed-JWT
// authentication; the answer holds the private key, which the server
// forgets.
func (c *Client) GenerateClientKey(ctx context.Context, issuer, id string, req api.GenerateKeyRequest) (api.GeneratedKey, error) {
	var out api.GeneratedKey
	_, err := c.do(ctx, http.MethodPost, clientPath(issuer, id)+"/keys", nil, nil, req, &out)
	return out, err
}

// ListKeys describes an issuer's signing keys.
func (c *Client) ListKeys(ctx context.Context, issuer string) ([]api.KeyResponse, error) {
	var out api.ListResponse[api.KeyResponse]
	_, err := c.do(ctx, http.MethodGet, issuerPath(issuer)+"/keys", nil, nil, nil, &out)
	return out.Items, err
}

// RotateKeys starts a normal rotation and returns the keys after it.
func (c *Client) RotateKeys(ctx context.Context, issuer string) ([]api.KeyResponse, error) {
	var out api.ListResponse[api.KeyResponse]
	_, err := c.do(ctx, http.MethodPost, issuerPath(issuer)+"/keys/rotate", nil, nil, nil, &out)
	return out.Items, err
}

// RevokeKey withdraws a compromised key at once and returns the keys after
// it.
func (c *Client) RevokeKey(ctx context.Context, issuer, kid string) ([]api.KeyResponse, error) {
	var out api.ListResponse[api.KeyResponse]
	_, err := c.do(ctx, http.MethodPost, issuerPath(issuer)+"/keys/"+url.PathEscape(kid)+"/revoke", nil, nil, nil, &out)
	return out.Items, err
}

// ListAudit returns up to limit audit entries, newest first; limit <= 0
// returns them all.
func (c *Client) ListAudit(ctx context.Context, limit int) ([]api.AuditEntryResponse, error) {
	if limit <= 0 {
		return listAll[api.AuditEntryResponse](ctx, c, "/audit", nil)
	}
	out := []api.AuditEntryResponse{}
	q := url.Values{}
	for len(out) < limit {
		q.Set("limit", strconv.Itoa(min(limit-len(out), pageSize)))
		var page api.ListResponse[api.AuditEntryResponse]
		if _, err := c.do(ctx, http.MethodGet, "/audit", q, nil, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return out, nil
}

// rolesPath is where a client's roles are, or with no client the issuer's
// own (realm) roles.
func rolesPath(issuer, clientID string) string {
	if clientID == "" {
		return issuerPath(issuer) + "/roles"
	}
	return clientPath(issuer, clientID) + "/roles"
}

// ListRoles returns the roles a client defines, or with clientID empty the
// issuer's own roles, ordered by name.
func (c *Client) ListRoles(ctx context.Context, issuer, clientID string) ([]api.RoleResponse, error) {
	var out api.ListResponse[api.RoleResponse]
	_, err := c.do(ctx, http.MethodGet, rolesPath(issuer, clientID), nil, nil, nil, &out)
	return out.Items, err
}

// CreateRole defines a role on a client, or with clientID empty on the
// issuer.
func (c *Client) CreateRole(ctx context.Context, issuer, clientID string, req api.CreateRoleRequest) (api.RoleResponse, error) {
	var out api.RoleResponse
	_, err := c.do(ctx, http.MethodPost, rolesPath(issuer, clientID), nil, nil, req, &out)
	return out, err
}

// DeleteRole deletes a role and every mapping to it.
func (c *Client) DeleteRole(ctx context.Context, issuer, clientID, name string) error {
	_, err := c.do(ctx, http.MethodDelete, rolesPath(issuer, clientID)+"/"+url.PathEscape(name), nil, nil, nil, nil)
	return err
}

// CreateInitialAccessToken makes a token that registers clients of the
// issuer through its registration service; the answer holds the token,
// which the server never shows again.
func (c *Client) CreateInitialAccessToken(ctx context.Context, issuer string, req api.CreateInitialAccessTokenRequest) (api.CreatedInitialAccessToken, error) {
	var out api.CreatedInitialAccessToken
	_, err := c.do(ctx, http.MethodPost, issuerPath(issuer)+"/initial-access-tokens", nil, nil, req, &out)
	return out, err
}

// ListInitialAccessTokens describes the issuer's initial access tokens,
// never the tokens themselves.
func (c *Client) ListInitialAccessTokens(ctx context.Context, issuer string) ([]api.InitialAccessTokenResponse, error) {
	var out api.ListResponse[api.InitialAccessTokenResponse]
	_, err := c.do(ctx, http.MethodGet, issuerPath(issuer)+"/initial-access-tokens", nil, nil, nil, &out)
	return out.Items, err
}

// DeleteInitialAccessToken revokes an initial access token.
func (c *Client) DeleteInitialAccessToken(ctx context.Context, issuer, id string) error {
	_, err := c.do(ctx, http.MethodDelete, issuerPath(issuer)+"/initial-access-tokens/"+url.PathEscape(id), nil, nil, nil, nil)
	return err
}

// ImportOptions are an import's choices: the issuer's name (empty: the
// realm's), a dry run, and leave to update an issuer that exists.
type ImportOptions struct {
	Issuer string
	DryRun bool
	Update bool
}

// ImportKeycloak imports a Keycloak realm export (the JSON `kc.sh export`
// writes) as one Keycloak-style issuer. With DryRun it reports what it
// would do and changes nothing. The export is sent as it is, so that the
// server judges it.
func (c *Client) ImportKeycloak(ctx context.Context, export []byte, opts ImportOptions) (api.ImportResponse, error) {
	query := url.Values{}
	if opts.Issuer != "" {
		query.Set("issuer", opts.Issuer)
	}
	if opts.DryRun {
		query.Set("dryRun", "true")
	}
	if opts.Update {
		query.Set("update", "true")
	}
	var out api.ImportResponse
	_, err := c.doPayload(ctx, http.MethodPost, strings.TrimPrefix(api.ImportPath, api.Prefix), query, nil, export, &out)
	return out, err
}

// GatewayConfigRequest says which gateway a configuration is for and what
// it requires: one of Scopes, one of Roles (CLIENT:ROLE, or ROLE of the
// audience's client), and Audience in place of the issuer's.
type GatewayConfigRequest struct {
	Gateway  string
	Upstream string
	Audience string
	Scopes   []string
	Roles    []string
}

// GatewayConfig returns the configuration with which a gateway admits only
// the issuer's tokens, as the gateway reads it (YAML, JSON or Apache's).
func (c *Client) GatewayConfig(ctx context.Context, issuer string, req GatewayConfigRequest) ([]byte, error) {
	query := url.Values{"gateway": {req.Gateway}}
	if req.Upstream != "" {
		query.Set("upstream", req.Upstream)
	}
	if req.Audience != "" {
		query.Set("audience", req.Audience)
	}
	query["scope"], query["role"] = req.Scopes, req.Roles
	var out []byte
	_, err := c.do(ctx, http.MethodGet, issuerPath(issuer)+"/gateway-config", query, nil, nil, &out)
	return out, err
}
