package auth

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Client addresses behind proxies.
//
// A request's client address decides allowlists and keys the failed-login
// limiter, so it must not be something a client can choose. The rules:
//
//   - The direct peer (the TCP connection's remote address, or the one a
//     trusted proxy gave in a PROXY protocol header) is the client unless
//     it is one of the configured trusted proxies.
//   - Only when the direct peer is trusted is a forwarding header read, and
//     only the one the proxies are configured to write: X-Forwarded-For
//     (ClientIP; nginx, HAProxy, Envoy, cloud load balancers) or Forwarded
//     (RFC 7239, ClientIPFrom with HeaderForwarded). Never both: a proxy
//     passes the header it does not write through unchanged, so reading it
//     would let the client plant its own address there.
//   - The header's list grows to the right, each proxy appending the peer
//     it saw, so it is read right to left: the client is the rightmost hop
//     that is not a trusted proxy (anything to its left was written by the
//     client or by proxies we do not trust). If every hop is trusted, it is
//     the leftmost.
//   - A hop that is not an address (Forwarded's "unknown", obfuscated
//     identifiers, garbage) where the walk needs one gives no address (the
//     zero netip.Addr): a non-empty allowlist then denies.
//
// A spoofed header from anyone else changes nothing.

// The forwarding headers ClientIPFrom reads.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
)

// ClientIP returns the client address of r, whose direct peer is remote,
// given the trusted proxies, which write X-Forwarded-For.
func ClientIP(r *http.Request, remote netip.Addr, trusted CIDRs) netip.Addr {
	return ClientIPFrom(r, remote, trusted, HeaderXForwardedFor)
}

// ClientIPFrom is ClientIP for proxies that write header
// (HeaderXForwardedFor or HeaderForwarded).
func ClientIPFrom(r *http.Request, remote netip.Addr, trusted CIDRs, header string) netip.Addr {
	remote = remote.Unmap()
	if !trusted.Contains(remote) {
		return remote
	}
	hops, ok := forwardedFor(r.Header, header)
	if !ok {
		return remote
	}
	client := remote
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			return netip.Addr{}
		}
		client = ip
		if !trusted.Contains(ip) {
			return ip
		}
	}
	return client
}

// RemoteIP returns the address in r.RemoteAddr (the direct peer).
func RemoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// forwardedFor returns the hops of header, in order: the for= parameters
// of Forwarded, or the entries of X-Forwarded-For. ok is false if the
// header is absent.
func forwardedFor(h http.Header, header string) (hops []string, ok bool) {
	vs := h.Values(header)
	if len(vs) == 0 {
		return nil, false
	}
	for _, v := range vs {
		for elem := range strings.SplitSeq(v, ",") {
			if !strings.EqualFold(header, HeaderForwarded) {
				hops = append(hops, strings.TrimSpace(elem))
				continue
			}
			hop := "unknown" // an element without for= says nothing usable
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hop = strings.Trim(val, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops, true
}

// parseHop parses one hop: an address, optionally with a port, IPv6 in
// brackets when it has one.
func parseHop(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && ip.Zone() == "" {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// PROXY protocol (HAProxy's "The PROXY protocol", versions 1 and 2): a load
// balancer that terminates nothing but TCP sends the client's address in a
// header before the first byte of the connection.
//
// ProxyListener reads the header only from connections whose peer is a
// trusted proxy, and there it is optional: a trusted peer that sends none
// is taken as the client itself. From any other peer nothing is read: the
// bytes go to the server untouched, so a PROXY header sent by a client is
// not honoured, it is a malformed request (HTTP answers 400). A trusted
// peer's malformed header, or one not complete within ProxyHeaderTimeout,
// closes the connection. The LOCAL command (v2) and UNKNOWN family (v1) keep
// the peer's own address.

// ProxyHeaderTimeout bounds how long a trusted peer may take to send its
// PROXY header.
const ProxyHeaderTimeout = 5 * time.Second

// ErrProxyHeader is a malformed PROXY protocol header from a trusted proxy.
var ErrProxyHeader = errors.New("auth: malformed PROXY protocol header")

// ProxyListener wraps ln so that connections from trusted proxies report
// the client address of their PROXY header as RemoteAddr. The header is
// read by the connection's first Read or RemoteAddr call, in the
// connection's own goroutine, never in Accept.
func ProxyListener(ln net.Listener, trusted CIDRs) net.Listener {
	return &proxyListener{Listener: ln, trusted: trusted}
}

type proxyListener struct {
	net.Listener
	trusted CIDRs
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.trusted.Contains(AddrOf(c.RemoteAddr())) {
		return c, nil
	}
	return &proxyConn{Conn: c, br: bufio.NewReaderSize(c, 256)}, nil
}

type proxyConn struct {
	net.Conn
	br     *bufio.Reader
	once   sync.Once
	remote net.Addr
	err    error
}

func (c *proxyConn) init() {
	c.once.Do(func() {
		c.remote = c.Conn.RemoteAddr()
		c.Conn.SetReadDeadline(time.Now().Add(ProxyHeaderTimeout))
		addr, err := readProxyHeader(c.br)
		c.Conn.SetReadDeadline(time.Time{})
		if err != nil {
			c.err = err
			c.Conn.Close()
			return
		}
		if addr != nil {
			c.remote = addr
		}
	})
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.br.Read(p)
}

func (c *proxyConn) RemoteAddr() net.Addr {
	c.init()
	return c.remote
}

var (
	proxyV1Sig = []byte("PROXY ")
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// readProxyHeader consumes a PROXY header if the stream starts with one and
// returns its source address (nil for LOCAL, UNKNOWN, or no header).
func readProxyHeader(br *bufio.Reader) (net.Addr, error) {
	b, err := br.Peek(len(proxyV1Sig))
	if err != nil {
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return nil, nil
		}
		if !bytes.HasPrefix(proxyV1Sig, b) && !bytes.HasPrefix(proxyV2Sig, b) {
			return nil, nil
		}
		return nil, ErrProxyHeader
	}
	switch {
	case bytes.Equal(b, proxyV1Sig):
		return readProxyV1(br)
	case bytes.Equal(b, proxyV2Sig[:len(b)]):
		return readProxyV2(br)
	}
	return nil, nil
}

// readProxyV1 reads "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", at
// most 107 bytes (the specification's bound).
func readProxyV1(br *bufio.Reader) (net.Addr, error) {
	const max = 107
	line := make([]byte, 0, max)
	for len(line) < max {
		c, err := br.ReadByte()
		if err != nil {
			return nil, ErrProxyHeader
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return nil, ErrProxyHeader
	}
	f := strings.Split(s, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return nil, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return nil, ErrProxyHeader
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil || ip.Is4() != (f[1] == "TCP4") || ip.Zone() != "" {
		return nil, ErrProxyHeader
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(f[2], f[4]))
	if err != nil {
		return nil, ErrProxyHeader
	}
	return net.TCPAddrFromAddrPort(ap), nil
}

// readProxyV2 reads the binary header: 12-byte signature, version and
// command, family and transport, 2-byte length, addresses, TLVs (skipped).
func readProxyV2(br *bufio.Reader) (net.Addr, error) {
	var h [16]byte
	if _, err := io.ReadFull(br, h[:]); err != nil || !bytes.Equal(h[:12], proxyV2Sig) {
		return nil, ErrProxyHeader
	}
	if h[12]>>4 != 2 {
		return nil, ErrProxyHeader
	}
	n := int(binary.BigEndian.Uint16(h[14:]))
	// The v2 header is at most 16 + 65535 bytes; the address block needs
	// 216 at most (AF_UNIX). TLVs beyond 512 bytes are refused rather than
	// buffered.
	if n > 512 {
		return nil, ErrProxyHeader
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, ErrProxyHeader
	}
	switch h[12] & 0x0f {
	case 0x0: // LOCAL: the proxy's own connection (health checks)
		return nil, nil
	case 0x1: // PROXY
	default:
		return nil, ErrProxyHeader
	}
	switch h[13] >> 4 {
	case 0x1: // AF_INET: src 4, dst 4, sport 2, dport 2
		if n < 12 {
			return nil, ErrProxyHeader
		}
		ip := netip.AddrFrom4([4]byte(body[:4]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:]))), nil
	case 0x2: // AF_INET6: src 16, dst 16, sport 2, dport 2
		if n < 36 {
			return nil, ErrProxyHeader
		}
		ip := netip.AddrFrom16([16]byte(body[:16])).Unmap()
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:]))), nil
	}
	return nil, nil // AF_UNSPEC or AF_UNIX: keep the peer's address
}
