package listener_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authz-dev/authz/listener"
)

func TestSourceBelievesOnlyTrustedProxies(t *testing.T) {
	trusted, err := listener.ParseTrustedProxies("10.0.0.0/8, 192.0.2.7, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, no header", "198.51.100.1:4000", nil, "198.51.100.1"},
		{"untrusted peer cannot choose its address", "198.51.100.1:4000", []string{"203.0.113.5"}, "198.51.100.1"},
		{"trusted balancer, one hop", "10.1.2.3:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"forged hops left of the caller are ignored", "10.1.2.3:4000", []string{"1.1.1.1, 2.2.2.2, 203.0.113.5"}, "203.0.113.5"},
		{"a chain of trusted proxies", "10.1.2.3:4000", []string{"203.0.113.5, 192.0.2.7, 10.9.9.9"}, "203.0.113.5"},
		{"several headers, in order", "10.1.2.3:4000", []string{"1.1.1.1", "203.0.113.5, 10.0.0.1"}, "203.0.113.5"},
		{"every hop trusted: the left-most", "10.1.2.3:4000", []string{"10.0.0.9, 192.0.2.7"}, "10.0.0.9"},
		{"trusted balancer without the header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"an unparseable hop is the caller, keyed on its text", "10.1.2.3:4000", []string{"203.0.113.5, not-an-ip, 10.0.0.2"}, "xff:not-an-ip"},
		{"not the balancer: callers behind it stay apart", "10.1.2.3:4000", []string{"unknown"}, "xff:unknown"},
		{"an unparseable hop's key is bounded", "10.1.2.3:4000", []string{strings.Repeat("x", 500)}, "xff:" + strings.Repeat("x", 64)},
		{"hops with ports", "10.1.2.3:4000", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"IPv6 hops with ports", "10.1.2.3:4000", []string{"[2001:db9::5]:443, 10.0.0.2:80"}, "2001:db9::5"},
		{"IPv6 balancer", "[2001:db8::1]:4000", []string{"2001:db9::5"}, "2001:db9::5"},
		{"IPv4-mapped IPv6 peer", "[::ffff:10.1.2.3]:4000", []string{"203.0.113.5"}, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := trusted.Source(r); got != tc.want {
				t.Fatalf("Source = %s, want %s", got, tc.want)
			}
		})
	}
	var none listener.TrustedProxies
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header = "10.1.2.3:1", map[string][]string{"X-Forwarded-For": {"203.0.113.5"}}
	if got := none.Source(r); got != "10.1.2.3" {
		t.Fatalf("with no trusted proxies: %s", got)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "10.0.0.0/8/1"} {
		if _, err := listener.ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
