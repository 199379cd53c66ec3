package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/go-jose/go-jose/v4"
)

// Limits on fetching a client's JWKS: a slow or huge answer must not tie up
// the token endpoint.
const (
	jwksFetchTimeout = 3 * time.Second
	jwksMaxBytes     = 64 << 10
	jwksDefaultTTL   = 5 * time.Minute
	jwksMinTTL       = time.Minute
	jwksMaxTTL       = time.Hour
	// jwksMinRefetch bounds how often an unknown kid may trigger a fetch.
	jwksMinRefetch = 10 * time.Second
)

// errBlockedAddress is the SSRF guard's refusal.
var errBlockedAddress = errors.New("address is loopback, private, link-local or otherwise internal")

// blockedRanges are address ranges that are internal, reserved, or carry
// an IPv4 address inside IPv6 that a translator would turn into one of
// them: NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), 6to4
// (2002::/16), Teredo (2001::/32), IPv4-compatible (::/96) and
// IPv4-translated (::ffff:0:0:0/96) addresses.
var blockedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("::ffff:0:0:0/96"), // SIIT (IPv4-translated)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("::/96"),           // IPv4-compatible
}

// blockedAddress tells the addresses a server-side fetch must not reach
// unless the operator allows it: they belong to this host or its network,
// or could be translated into such an address.
func blockedAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// jwksFetcher fetches and caches clients' key sets.
type jwksFetcher struct {
	client       *http.Client
	allowPrivate bool
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	mu        sync.Mutex
	set       jose.JSONWebKeySet
	fetched   bool      // set holds a fetched key set
	expires   time.Time // when set should be fetched again
	lastFetch time.Time // when the last fetch started
	lastErr   error     // how the last fetch failed, if it did
	// inflight is closed when the running fetch ends; nil when none runs.
	inflight chan struct{}
}

func newJWKSFetcher(allowPrivate bool, now func() time.Time) *jwksFetcher {
	dialer := &net.Dialer{Timeout: jwksFetchTimeout}
	if !allowPrivate {
		// Checked on the address actually dialed, after DNS, so a name
		// that resolves inside the network is refused too.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || blockedAddress(ip) {
				return errBlockedAddress
			}
			return nil
		}
	}
	return &jwksFetcher{
		allowPrivate: allowPrivate,
		now:          now,
		entries:      map[string]*jwksEntry{},
		client: &http.Client{
			Timeout: jwksFetchTimeout,
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           dialer.DialContext,
				TLSHandshakeTimeout:   jwksFetchTimeout,
				ResponseHeaderTimeout: jwksFetchTimeout,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       time.Minute,
			},
			// A redirect could lead anywhere; a key set has one address.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// ValidateJWKSURI checks a client's jwks_uri when it is registered: an
// absolute https URL (http only where private targets are allowed, for
// tests), with no credentials in it.
func (f *jwksFetcher) validate(raw string) error {
	if len(raw) > maxJWKSURILength {
		return fmt.Errorf("must be at most %d bytes", maxJWKSURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("must be an absolute URL without credentials or fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowPrivate:
	default:
		return errors.New("must use https")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && blockedAddress(ip) && !f.allowPrivate {
		return errBlockedAddress
	}
	return nil
}

// keys returns the keys of the set at uri that match kid (all keys when kid
// is empty). The set is fetched by one request at a time, with a timeout of
// its own: while it is fetched, callers that have a set use it as it was,
// and only callers with none wait, for at most as long as their request
// lives. An unknown kid, or a set past its lifetime, is fetched again at
// most every 10 s, and a failed fetch is answered from memory for as long,
// so that a slow or broken key host costs one fetch per 10 s, not one per
// request.
func (f *jwksFetcher) keys(ctx context.Context, uri, kid string) ([]jose.JSONWebKey, error) {
	f.mu.Lock()
	e, ok := f.entries[uri]
	if !ok {
		if len(f.entries) >= maxJWKSEntries {
			f.forgetIdle()
		}
		e = &jwksEntry{}
		f.entries[uri] = e
	}
	f.mu.Unlock()

	for {
		e.mu.Lock()
		now := f.now()
		match := matchKid(e.set, kid)
		fresh := now.Before(e.expires)
		recent := !e.lastFetch.IsZero() && now.Sub(e.lastFetch) < jwksMinRefetch
		switch {
		case fresh && len(match) > 0:
			e.mu.Unlock()
			return match, nil
		case e.inflight != nil && e.fetched:
			// Another request is fetching: use what there is meanwhile.
			e.mu.Unlock()
			if len(match) > 0 {
				return match, nil
			}
			return nil, fmt.Errorf("no key %q in the client's JWKS, which is being fetched again", kid)
		case e.inflight != nil:
			wait := e.inflight
			e.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("the client's JWKS is being fetched: %w", ctx.Err())
			}
		case recent && e.lastErr != nil:
			err := e.lastErr
			e.mu.Unlock()
			return nil, err
		case recent:
			e.mu.Unlock()
			if len(match) > 0 {
				return match, nil
			}
			return nil, fmt.Errorf("no key %q in the client's JWKS (fetched %s ago; fetched at most every %s)",
				kid, now.Sub(e.lastFetch).Truncate(time.Second), jwksMinRefetch)
		}
		// This request fetches, and waits for its fetch; the fetch outlives
		// it, for the others.
		done := make(chan struct{})
		e.inflight, e.lastFetch = done, now
		e.mu.Unlock()
		go f.refresh(e, uri, done)
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("the client's JWKS is being fetched: %w", ctx.Err())
		}
	}
}

// Bounds of the fetcher's memory: a URI no longer than a browser takes,
// and a set of cached key sets that registrations cannot grow without
// limit (each distinct URI, one per client at most, costs an entry).
const (
	maxJWKSURILength = 2048
	maxJWKSEntries   = 10_000
)

// forgetIdle drops a tenth of the entries that no fetch is using, the
// caller holding f.mu. A dropped set is fetched again when next needed,
// so forgetting costs a fetch, never a wrong answer.
func (f *jwksFetcher) forgetIdle() {
	drop := maxJWKSEntries / 10
	for uri, e := range f.entries {
		if drop == 0 {
			return
		}
		if e.mu.TryLock() {
			idle := e.inflight == nil
			e.mu.Unlock()
			if idle {
				delete(f.entries, uri)
				drop--
			}
		}
	}
}

// refresh fetches a set into its entry and wakes the waiters.
func (f *jwksFetcher) refresh(e *jwksEntry, uri string, done chan struct{}) {
	set, ttl, err := f.fetch(context.Background(), uri)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastErr = err
	if err == nil {
		e.set, e.fetched, e.expires = set, true, f.now().Add(ttl)
	}
	e.inflight = nil
	close(done)
}

func matchKid(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

func (f *jwksFetcher) fetch(ctx context.Context, uri string) (jose.JSONWebKeySet, time.Duration, error) {
	var set jose.JSONWebKeySet
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return set, 0, fmt.Errorf("the client's jwks_uri is not usable: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, errBlockedAddress) {
			return set, 0, errors.New("the client's jwks_uri points at an internal address, which this server does not fetch")
		}
		var timeout interface{ Timeout() bool }
		if errors.As(err, &timeout) && timeout.Timeout() {
			return set, 0, fmt.Errorf("fetching the client's jwks_uri timed out after %s", jwksFetchTimeout)
		}
		return set, 0, errors.New("fetching the client's jwks_uri failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, 0, fmt.Errorf("the client's jwks_uri answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return set, 0, errors.New("reading the client's JWKS failed")
	}
	if len(body) > jwksMaxBytes {
		return set, 0, fmt.Errorf("the client's JWKS exceeds %d KiB", jwksMaxBytes>>10)
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, 0, errors.New("the client's jwks_uri did not answer a JSON key set")
	}
	usable, err := signingKeys(set.Keys)
	if err != nil {
		return jose.JSONWebKeySet{}, 0, err
	}
	return jose.JSONWebKeySet{Keys: usable}, cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// cacheTTL honours max-age within bounds, so a client can neither pin a set
// forever nor make every request fetch.
func cacheTTL(cacheControl string) time.Duration {
	for _, part := range strings.Split(cacheControl, ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		if part == "no-store" || part == "no-cache" {
			return jwksMinTTL
		}
		if v, ok := strings.CutPrefix(part, "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return min(max(time.Duration(n)*time.Second, jwksMinTTL), jwksMaxTTL)
			}
		}
	}
	return jwksDefaultTTL
}

// signingKeys keeps the keys of a fetched set that a client may sign
// assertions with, by the rules a registered key meets: encryption keys
// are passed over, and a private key or a key that breaks the rules (an
// RSA key under 2048 bits, say) fails the whole set, so that a weak key
// never verifies anything.
func signingKeys(keys []jose.JSONWebKey) ([]jose.JSONWebKey, error) {
	var usable []jose.JSONWebKey
	for _, k := range keys {
		err := credential.CheckClientKey(k)
		switch {
		case errors.Is(err, credential.ErrEncryptionKey):
			continue
		case err != nil:
			return nil, fmt.Errorf("the client's JWKS holds a key that is not accepted (kid %q): %v", k.KeyID, err)
		}
		usable = append(usable, k)
	}
	return usable, nil
}
