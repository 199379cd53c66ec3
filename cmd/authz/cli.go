package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authz-dev/authz/api"
)

// output prints a command's result as a table or as JSON for scripts.
type output struct {
	w      io.Writer
	format string
}

func (o output) json(v any) error {
	enc := json.NewEncoder(o.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header; the JSON form is v.
func (o output) table(v any, header []string, rows [][]string) error {
	if o.format == "json" {
		return o.json(v)
	}
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cliCommand parses a command's flags, including the shared -o.
func cliCommand(name string, getenv func(string) string, stderr io.Writer) (*settings, *string) {
	set := newSettings(name, getenv, stderr)
	format := set.String("o", "AUTHZ_OUTPUT", "table", "output format: table or json")
	set.Check(func() error {
		if *format != "table" && *format != "json" {
			return fmt.Errorf("-o must be table or json, not %q", *format)
		}
		return nil
	})
	return set, format
}

// issuerCommand is an admin command about one issuer's resources: it takes
// --issuer, at most one positional name, and opens the admin session.
func issuerCommand(name string, args []string, getenv func(string) string, stderr io.Writer, declare func(*settings)) (
	s *adminSession, issuerName, positional string, out func(io.Writer) output, err error) {
	set, format := cliCommand(name, getenv, stderr)
	issuer := set.String("issuer", "AUTHZ_ISSUER", "", "the issuer (required)")
	set.Require(issuer, "--issuer")
	declare(set)
	if positional, err = set.ParseWithName(args); err != nil {
		return nil, "", "", nil, err
	}
	if s, err = openAdminSession(getenv); err != nil {
		return nil, "", "", nil, err
	}
	return s, *issuer, positional, func(w io.Writer) output { return output{w: w, format: *format} }, nil
}

func issuerRows(issuers ...api.IssuerResponse) [][]string {
	var rows [][]string
	for _, i := range issuers {
		rows = append(rows, []string{i.Name, i.Audience, strings.Join(i.AvailableScopes, ","),
			(time.Duration(i.TokenLifetime) * time.Second).String(), i.Issuer})
	}
	return rows
}

var issuerHeader = []string{"NAME", "AUDIENCE", "SCOPES", "LIFETIME", "ISSUER URL"}

func clientRows(clients ...api.ClientResponse) [][]string {
	var rows [][]string
	for _, c := range clients {
		state := "enabled"
		if !c.Enabled {
			state = "disabled"
		}
		rows = append(rows, []string{c.ClientID, c.Name, state, strings.Join(c.Scopes, ","), strings.Join(c.Roles, ",")})
	}
	return rows
}

var clientHeader = []string{"CLIENT ID", "NAME", "STATE", "SCOPES", "ROLES"}

// listAll follows nextCursor until the listing ends.
func listAll[T any](ctx context.Context, s *adminSession, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := path + sep + "limit=500"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		if err := s.call(ctx, http.MethodGet, p, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

func runLogin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set := newSettings("login", getenv, stderr)
	adminURL := set.String("admin-url", "AUTHZ_ADMIN_URL", "http://127.0.0.1:8081", "the admin API's base URL")
	tokenURL := set.String("token-url", "AUTHZ_TOKEN_URL", "http://localhost:8080/issuers/system/token", "the system issuer's token endpoint")
	clientID := set.String("client-id", "AUTHZ_CLIENT_ID", "", "admin client id (from `authz bootstrap`)")
	clientSecret := set.String("client-secret", "AUTHZ_CLIENT_SECRET", "", "admin client secret")
	set.Require(clientID, "--client-id")
	set.Require(clientSecret, "--client-secret")
	if err := set.Parse(args); err != nil {
		return err
	}
	path, err := cliConfigPath(getenv)
	if err != nil {
		return err
	}
	s := &adminSession{path: path, hc: &http.Client{Timeout: 30 * time.Second}, cfg: cliConfig{
		AdminURL: strings.TrimRight(*adminURL, "/"), TokenURL: *tokenURL, ClientID: *clientID, ClientSecret: *clientSecret,
	}}
	if _, err := s.token(ctx); err != nil {
		return err
	}
	// Prove the token opens the admin API before calling it a login.
	if err := s.call(ctx, http.MethodGet, "/issuers?limit=1", nil, nil); err != nil {
		return fmt.Errorf("the admin API refused the token: %w", err)
	}
	fmt.Fprintf(stdout, "Logged in to %s as %s (credentials in %s).\n", s.cfg.AdminURL, *clientID, path)
	return nil
}

func runIssuers(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: authz issuers list | get NAME | delete NAME [--cascade]")
		return errUsage
	}
	verb := args[0]
	set, format := cliCommand("issuers "+verb, getenv, stderr)
	cascade := set.fs.Bool("cascade", false, "with delete: delete the issuer's clients too")
	name, err := set.ParseWithName(args[1:])
	if err != nil {
		return err
	}
	s, err := openAdminSession(getenv)
	if err != nil {
		return err
	}
	out := output{w: stdout, format: *format}
	switch verb {
	case "list":
		issuers, err := listAll[api.IssuerResponse](ctx, s, "/issuers")
		if err != nil {
			return err
		}
		return out.table(issuers, issuerHeader, issuerRows(issuers...))
	case "get":
		if name == "" {
			return errors.New("usage: authz issuers get NAME")
		}
		var iss api.IssuerResponse
		if err := s.call(ctx, http.MethodGet, "/issuers/"+url.PathEscape(name), nil, &iss); err != nil {
			return err
		}
		return out.table(iss, issuerHeader, issuerRows(iss))
	case "delete":
		if name == "" {
			return errors.New("usage: authz issuers delete NAME [--cascade]")
		}
		if err := s.call(ctx, http.MethodDelete, "/issuers/"+url.PathEscape(name)+"?cascade="+fmt.Sprint(*cascade), nil, nil); err != nil {
			return err
		}
		return out.table(map[string]string{"deleted": name}, []string{"DELETED"}, [][]string{{name}})
	default:
		return fmt.Errorf("unknown issuers command %q: use list, get or delete", verb)
	}
}

func runClients(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: authz clients create|list|get|disable|enable|delete|rotate-secret|set-jwk|set-jwks-uri|generate-key --issuer NAME [CLIENT_ID]")
		return errUsage
	}
	verb := args[0]
	var name, clientID, scopes, roles, audience, enabled, jwkFile, jwksURI, algorithm *string
	var lifetime, grace *time.Duration
	s, issuerName, id, outFor, err := issuerCommand("clients "+verb, args[1:], getenv, stderr, func(set *settings) {
		name = set.fs.String("name", "", "create: display name; list: keep names containing this")
		clientID = set.fs.String("client-id", "", "create: choose the client id instead of generating one")
		scopes = set.fs.String("scopes", "", "create: comma-separated scopes")
		roles = set.fs.String("roles", "", "create: comma-separated roles")
		audience = set.fs.String("audience", "", "create: audience (default: the issuer's)")
		lifetime = set.fs.Duration("token-lifetime", 0, "create: token lifetime (default: the issuer's)")
		enabled = set.fs.String("enabled", "", "list: true or false")
		grace = set.fs.Duration("grace", 24*time.Hour, "rotate-secret: how long the old secrets stay valid (0 revokes them now)")
		jwkFile = set.fs.String("jwk-file", "", "set-jwk: file holding the client's public JWK")
		jwksURI = set.fs.String("jwks-uri", "", "set-jwks-uri: https URL of the client's key set")
		algorithm = set.fs.String("algorithm", "RS256", "generate-key: RS256, PS256, ES256 or EdDSA")
	})
	if err != nil {
		return err
	}
	out := outFor(stdout)
	base := "/issuers/" + url.PathEscape(issuerName) + "/clients"
	needID := func() error {
		if id == "" {
			return fmt.Errorf("usage: authz clients %s --issuer NAME CLIENT_ID", verb)
		}
		return nil
	}
	switch verb {
	case "create":
		body := map[string]any{"name": *name, "scopes": splitList(*scopes), "roles": splitList(*roles)}
		if *clientID != "" {
			body["clientId"] = *clientID
		}
		if *audience != "" {
			body["audience"] = *audience
		}
		if *lifetime > 0 {
			body["tokenLifetime"] = int64(*lifetime / time.Second)
		}
		var c api.CreatedClientResponse
		if err := s.call(ctx, http.MethodPost, base, body, &c); err != nil {
			return err
		}
		return printCreatedClient(out, c)
	case "list":
		q := url.Values{}
		if *name != "" {
			q.Set("name", *name)
		}
		if *enabled != "" {
			q.Set("enabled", *enabled)
		}
		path := base
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		clients, err := listAll[api.ClientResponse](ctx, s, path)
		if err != nil {
			return err
		}
		return out.table(clients, clientHeader, clientRows(clients...))
	case "get":
		if err := needID(); err != nil {
			return err
		}
		var c api.ClientResponse
		if err := s.call(ctx, http.MethodGet, base+"/"+url.PathEscape(id), nil, &c); err != nil {
			return err
		}
		return out.table(c, clientHeader, clientRows(c))
	case "enable", "disable":
		if err := needID(); err != nil {
			return err
		}
		var c api.ClientResponse
		if err := s.call(ctx, http.MethodPatch, base+"/"+url.PathEscape(id), map[string]bool{"enabled": verb == "enable"}, &c); err != nil {
			return err
		}
		return out.table(c, clientHeader, clientRows(c))
	case "delete":
		if err := needID(); err != nil {
			return err
		}
		if err := s.call(ctx, http.MethodDelete, base+"/"+url.PathEscape(id), nil, nil); err != nil {
			return err
		}
		return out.table(map[string]string{"deleted": id}, []string{"DELETED"}, [][]string{{id}})
	case "set-jwk", "set-jwks-uri":
		if err := needID(); err != nil {
			return err
		}
		body := map[string]any{}
		if verb == "set-jwk" {
			raw, err := os.ReadFile(*jwkFile)
			if err != nil {
				return fmt.Errorf("--jwk-file: %w", err)
			}
			body["jwk"] = json.RawMessage(raw)
		} else {
			body["jwksUri"] = *jwksURI
		}
		var c api.ClientResponse
		if err := s.call(ctx, http.MethodPatch, base+"/"+url.PathEscape(id), body, &c); err != nil {
			return err
		}
		return out.table(c, clientHeader, clientRows(c))
	case "generate-key":
		if err := needID(); err != nil {
			return err
		}
		var key api.GeneratedKey
		if err := s.call(ctx, http.MethodPost, base+"/"+url.PathEscape(id)+"/keys", map[string]string{"algorithm": *algorithm}, &key); err != nil {
			return err
		}
		if out.format == "json" {
			return out.json(key)
		}
		fmt.Fprintf(out.w, "Registered a new %s public key (kid %s) for %s. Its private key is shown only now:\n%s", key.Algorithm, key.KID, id, key.PrivateKeyPEM)
		return nil
	case "rotate-secret":
		if err := needID(); err != nil {
			return err
		}
		var sec api.CreatedSecret
		if err := s.call(ctx, http.MethodPost, base+"/"+url.PathEscape(id)+"/secrets",
			map[string]int64{"graceSeconds": int64(*grace / time.Second)}, &sec); err != nil {
			return err
		}
		if out.format == "json" {
			return out.json(map[string]string{"client_id": id, "secret_id": sec.ID, "client_secret": sec.ClientSecret})
		}
		fmt.Fprintf(out.w, "New secret for %s (shown only now; old secrets stay valid for %s):\n  client_secret: %s\n", id, *grace, sec.ClientSecret)
		return nil
	default:
		return fmt.Errorf("unknown clients command %q", verb)
	}
}

func printCreatedClient(out output, c api.CreatedClientResponse) error {
	if out.format == "json" {
		return out.json(c)
	}
	fmt.Fprintf(out.w, "Created client %s. Its secret is shown only now:\n  client_id:     %s\n  client_secret: %s\n  token URL:     %s\n",
		c.Name, c.ClientID, c.ClientSecret, c.TokenEndpoint)
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set, format := cliCommand("token", getenv, stderr)
	issuerName := set.String("issuer", "AUTHZ_ISSUER", "", "issuer name (required unless --token-url)")
	publicURL := set.String("public-url", "AUTHZ_PUBLIC_URL", "http://localhost:8080", "the server's public base URL")
	tokenURL := set.fs.String("token-url", "", "the token endpoint, instead of --issuer and --public-url")
	clientID := set.String("client-id", "AUTHZ_CLIENT_ID", "", "client id (required)")
	clientSecret := set.String("client-secret", "AUTHZ_CLIENT_SECRET", "", "client secret (required)")
	scope := set.fs.String("scope", "", "space- or comma-separated scopes to request")
	set.Require(clientID, "--client-id")
	set.Require(clientSecret, "--client-secret")
	if err := set.Parse(args); err != nil {
		return err
	}
	if *tokenURL == "" {
		if *issuerName == "" {
			return errors.New("--issuer (or --token-url) is required")
		}
		*tokenURL = strings.TrimRight(*publicURL, "/") + "/issuers/" + url.PathEscape(*issuerName) + "/token"
	}
	tok, raw, err := requestToken(ctx, &http.Client{Timeout: 30 * time.Second}, *tokenURL, *clientID, *clientSecret,
		strings.Join(strings.FieldsFunc(*scope, func(r rune) bool { return r == ',' || r == ' ' }), " "))
	if err != nil {
		return err
	}
	if *format == "json" {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	return output{w: stdout}.table(tok, []string{"TOKEN TYPE", "EXPIRES IN", "SCOPE", "ACCESS TOKEN"},
		[][]string{{tok.TokenType, (time.Duration(tok.ExpiresIn) * time.Second).String(), tok.Scope, tok.AccessToken}})
}
