package listener

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the peers, such as load balancers, whose
// X-Forwarded-For is believed. The zero value trusts none.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes (a
// bare address counts as one host).
func ParseTrustedProxies(list string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", item)
			}
			out = append(out, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// trusts reports whether addr is a trusted proxy.
func (t TrustedProxies) trusts(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Source is the address a request comes from: the peer, or, when the peer
// is a trusted proxy, the right-most address in X-Forwarded-For that no
// trusted proxy added. Proxies append the address they received from, so
// everything left of the last untrusted hop is the caller's to forge;
// everything right of it was written by proxies the operator trusts.
func (t TrustedProxies) Source(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !t.trusts(peer) {
		return peer.String()
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	source := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := hopAddr(hops[i])
		if !ok {
			// Everything right of this hop is trusted, so a trusted proxy
			// wrote it: it names the caller in a form we cannot parse. Key
			// on its text rather than on the proxy, which would put every
			// caller behind it in one throttle bucket.
			return unparsedHop(hops[i])
		}
		source = addr
		if !t.trusts(source) {
			break
		}
	}
	return source.String()
}

// hopAddr reads one X-Forwarded-For hop: an address, or an address with a
// port ("203.0.113.5:4711", "[2001:db8::1]:443"), as some proxies write.
func hopAddr(hop string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(hop); err == nil {
		return addr.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// maxHopText bounds how much of an unparseable hop becomes a throttle key.
const maxHopText = 64

func unparsedHop(hop string) string {
	if len(hop) > maxHopText {
		hop = hop[:maxHopText]
	}
	return "xff:" + hop
}

// forwardedHops splits every X-Forwarded-For header, in order, into hops.
func forwardedHops(headers []string) []string {
	var hops []string
	for _, h := range headers {
		for _, hop := range strings.Split(h, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// peerAddr is the IP address of a request's or connection's remote end.
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}
