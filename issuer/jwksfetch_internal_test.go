package issuer

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBlockedAddressesCoverTranslatedAndReservedRanges(t *testing.T) {
	for addr, blocked := range map[string]bool{
		"127.0.0.1":                true,
		"10.1.2.3":                 true,
		"169.254.169.254":          true,
		"100.64.0.1":               true,
		"0.1.2.3":                  true,
		"198.18.0.1":               true,
		"255.255.255.255":          true,
		"::1":                      true,
		"fe80::1":                  true,
		"fc00::1":                  true,
		"::ffff:10.0.0.1":          true,
		"64:ff9b::a00:1":           true, // NAT64 of 10.0.0.1
		"64:ff9b::7f00:1":          true, // NAT64 of 127.0.0.1
		"64:ff9b:1::1":             true, // local-use NAT64
		"2002:a00:1::1":            true, // 6to4 of 10.0.0.1
		"2001:0:4136:e378::1":      true, // Teredo
		"::a00:1":                  true, // IPv4-compatible 10.0.0.1
		"8.8.8.8":                  false,
		"2606:4700:4700::1111":     false,
		"2001:db8::1":              false, // documentation, not Teredo: reachable only in tests
		"203.0.113.10":             false,
		"2a00:1450:4001:81c::200e": false,
	} {
		if got := blockedAddress(netip.MustParseAddr(addr)); got != blocked {
			t.Errorf("blockedAddress(%s) = %v, want %v", addr, got, blocked)
		}
	}
}

// TestTheJWKSCacheIsBounded replays the review's finding: every distinct
// jwks_uri (one per client, 60 KB each) kept an entry for good. URIs are
// bounded, and past maxJWKSEntries idle entries are forgotten.
func TestTheJWKSCacheIsBounded(t *testing.T) {
	f := newJWKSFetcher(false, time.Now)
	if err := f.validate("https://keys.example/" + strings.Repeat("a", maxJWKSURILength)); err == nil {
		t.Fatal("a URI longer than the bound was accepted")
	}
	busy := &jwksEntry{inflight: make(chan struct{})}
	f.entries["https://busy.example/jwks"] = busy
	for i := range maxJWKSEntries {
		f.entries[fmt.Sprintf("https://idle-%d.example/jwks", i)] = &jwksEntry{}
	}
	f.mu.Lock()
	f.forgetIdle()
	f.mu.Unlock()
	if n := len(f.entries); n > maxJWKSEntries*9/10+1 {
		t.Fatalf("%d entries after forgetting, want at most %d", n, maxJWKSEntries*9/10+1)
	}
	if f.entries["https://busy.example/jwks"] != busy {
		t.Fatal("an entry being fetched was forgotten")
	}
}
