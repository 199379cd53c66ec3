package listener

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// capPerAddress bounds the connections each caller may hold open: past
// max, its new connections are closed as soon as they are accepted, while
// other callers' are served. Callers for whom exempt is true (trusted
// proxies, behind which everyone shares one address) are not counted.
func capPerAddress(ln net.Listener, max int, exempt func(netip.Addr) bool) net.Listener {
	if max <= 0 {
		return ln
	}
	return &cappedListener{Listener: ln, max: max, exempt: exempt, open: map[netip.Prefix]int{}}
}

type cappedListener struct {
	net.Listener
	max    int
	exempt func(netip.Addr) bool

	mu   sync.Mutex
	open map[netip.Prefix]int
}

func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := peerAddr(c.RemoteAddr().String())
		if !addr.IsValid() || l.exempt(addr) {
			return c, nil
		}
		key := callerPrefix(addr)
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *cappedListener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// countedConn gives its place back once, when it closes.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// callerPrefix is what counts as one caller: an IPv4 address, or an IPv6
// /64, the smallest network a single subscriber is usually given, so that
// one host cannot pass for many by using many of its addresses.
func callerPrefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	if addr.Is4() {
		return netip.PrefixFrom(addr, 32)
	}
	p, _ := addr.Prefix(64)
	return p
}

// Identify reads a request's source address once (see Source) and gives
// it whole, as tokens name it, and as the caller a throttle keys on:
// grouped as one caller counts (an IPv6 caller is its /64).
func (t TrustedProxies) Identify(r *http.Request) (address, caller string) {
	source := t.Source(r)
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return source, source
	}
	if p := callerPrefix(addr); p.Bits() < addr.BitLen() {
		return addr.String(), p.String()
	}
	return addr.String(), addr.String()
}
