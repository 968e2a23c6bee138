package auth

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientIP_Spoofing(t *testing.T) {
	trusted, _ := ParseCIDRs([]string{"10.0.0.0/8", "2001:db8:ffff::/48"})
	tests := []struct {
		name    string
		remote  string
		headers map[string][]string
		want    string
		header  string // "" means X-Forwarded-For
	}{
		{"no proxy", "203.0.113.9", nil, "203.0.113.9", ""},
		{"XFF from untrusted peer changes nothing", "203.0.113.9",
			map[string][]string{"X-Forwarded-For": {"10.0.0.1"}}, "203.0.113.9", ""},
		{"Forwarded from untrusted peer changes nothing", "203.0.113.9",
			map[string][]string{"Forwarded": {"for=10.0.0.1"}}, "203.0.113.9", HeaderForwarded},
		{"XFF from trusted proxy is honoured", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7", ""},
		{"rightmost untrusted hop wins over a client-written left part", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"10.9.9.9, 198.51.100.7, 10.0.0.3"}}, "198.51.100.7", ""},
		{"several header lines read in order", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"1.2.3.4", "198.51.100.7"}}, "198.51.100.7", ""},
		{"all hops trusted: leftmost", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"10.0.0.5, 10.0.0.3"}}, "10.0.0.5", ""},
		{"hop with port", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7:5555"}}, "198.51.100.7", ""},
		{"garbage hop gives no address", "10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"not-an-ip"}}, "", ""},
		{"trusted proxy without header", "10.0.0.2", nil, "10.0.0.2", ""},
		{"Forwarded, IPv6 with port; a planted X-Forwarded-For is ignored", "10.0.0.2",
			map[string][]string{"Forwarded": {`for="[2001:db8::7]:4711";proto=https`}, "X-Forwarded-For": {"1.1.1.1"}}, "2001:db8::7", HeaderForwarded},
		{"X-Forwarded-For proxies: a planted Forwarded is ignored", "10.0.0.2",
			map[string][]string{"Forwarded": {"for=10.1.1.1"}, "X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7", ""},
		{"X-Forwarded-For proxies: Forwarded alone is ignored", "10.0.0.2",
			map[string][]string{"Forwarded": {"for=198.51.100.7"}}, "10.0.0.2", ""},
		{"Forwarded unknown gives no address", "10.0.0.2",
			map[string][]string{"Forwarded": {"for=unknown"}}, "", HeaderForwarded},
		{"Forwarded element without for gives no address", "10.0.0.2",
			map[string][]string{"Forwarded": {"proto=https"}}, "", HeaderForwarded},
		{"Forwarded chain", "2001:db8:ffff::1",
			map[string][]string{"Forwarded": {"for=192.0.2.1, for=198.51.100.7;by=10.0.0.1, for=10.0.0.9"}}, "198.51.100.7", HeaderForwarded},
		{"IPv4-mapped peer", "::ffff:10.0.0.2",
			map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			header := tt.header
			if header == "" {
				header = HeaderXForwardedFor
			}
			got := ClientIPFrom(r, netip.MustParseAddr(tt.remote), trusted, header)
			if header == HeaderXForwardedFor && ClientIP(r, netip.MustParseAddr(tt.remote), trusted) != got {
				t.Fatal("ClientIP differs from ClientIPFrom X-Forwarded-For")
			}
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

// proxyServer serves HTTP behind ProxyListener and answers each request
// with the RemoteAddr the server saw.
func proxyServer(t *testing.T, trusted CIDRs) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, RemoteIP(r).String())
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ProxyListener(ln, trusted))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func proxyV2Header(ip netip.Addr, port uint16) []byte {
	h := append([]byte{}, proxyV2Sig...)
	if ip.Is4() {
		h = append(h, 0x21, 0x11, 0, 12)
		a := ip.As4()
		h = append(h, a[:]...)
		h = append(h, 127, 0, 0, 1)
	} else {
		h = append(h, 0x21, 0x21, 0, 36)
		a := ip.As16()
		h = append(h, a[:]...)
		h = append(h, make([]byte, 16)...)
	}
	h = binary.BigEndian.AppendUint16(h, port)
	return binary.BigEndian.AppendUint16(h, 443)
}

// roundTrip sends prefix and a GET on a fresh connection and returns the
// status and body, or the error.
func roundTrip(addr string, prefix []byte) (int, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(prefix, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"...)); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestProxyListener(t *testing.T) {
	trusted, _ := ParseCIDRs([]string{"127.0.0.0/8"})
	untrusted, _ := ParseCIDRs([]string{"10.0.0.0/8"})
	v1 := []byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n")
	tests := []struct {
		name    string
		trusted CIDRs
		prefix  []byte
		status  int
		remote  string // "" with status 0: connection closed
	}{
		{"v1 from trusted proxy", trusted, v1, 200, "198.51.100.7"},
		{"v1 IPv6 from trusted proxy", trusted, []byte("PROXY TCP6 2001:db8::7 ::1 5555 443\r\n"), 200, "2001:db8::7"},
		{"v2 IPv4 from trusted proxy", trusted, proxyV2Header(netip.MustParseAddr("198.51.100.8"), 5555), 200, "198.51.100.8"},
		{"v2 IPv6 from trusted proxy", trusted, proxyV2Header(netip.MustParseAddr("2001:db8::8"), 5555), 200, "2001:db8::8"},
		{"v1 UNKNOWN keeps the peer", trusted, []byte("PROXY UNKNOWN\r\n"), 200, "127.0.0.1"},
		{"trusted proxy without header", trusted, nil, 200, "127.0.0.1"},
		{"malformed header from trusted proxy closes", trusted, []byte("PROXY TCP4 nonsense\r\n"), 0, ""},
		{"v1 from untrusted peer is not honoured", untrusted, v1, 400, ""},
		{"v2 from untrusted peer is not honoured", untrusted, proxyV2Header(netip.MustParseAddr("198.51.100.8"), 5555), 400, ""},
		{"untrusted peer without header", untrusted, nil, 200, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := proxyServer(t, tt.trusted)
			status, body, err := roundTrip(addr, tt.prefix)
			if tt.status == 0 {
				if err == nil {
					t.Fatalf("got %d %q, want the connection closed", status, body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || (tt.remote != "" && body != tt.remote) {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.status, tt.remote)
			}
			if strings.Contains(body, "198.51.100") && tt.trusted[0] == untrusted[0] {
				t.Fatal("an untrusted peer's PROXY header was honoured")
			}
		})
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\nGET"))
	f.Add(proxyV2Header(netip.MustParseAddr("2001:db8::8"), 1))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, err := readProxyHeader(bufio.NewReaderSize(strings.NewReader(string(b)), 256))
		if err == nil && addr != nil && AddrOf(addr) == (netip.Addr{}) {
			t.Fatalf("address without IP: %v", addr)
		}
	})
}

// FuzzClientIP checks that a forwarding header never moves an untrusted
// peer's address, and that a trusted peer's result is an address the
// header or the peer named.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2", "198.51.100.7, 10.0.0.3", false)
	f.Add("10.0.0.2", `for="[2001:db8::7]:4711";proto=https, for=unknown`, true)
	f.Add("203.0.113.9", "10.0.0.1", false)
	trusted := CIDRs{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, value string, forwarded bool) {
		peer, err := netip.ParseAddr(remote)
		if err != nil {
			return
		}
		header := HeaderXForwardedFor
		if forwarded {
			header = HeaderForwarded
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(header, value)
		got := ClientIPFrom(r, peer, trusted, header)
		switch {
		case !trusted.Contains(peer.Unmap()):
			if got != peer.Unmap() {
				t.Fatalf("untrusted peer %v became %v", peer, got)
			}
		case got.IsValid() && got != peer.Unmap() && !strings.Contains(strings.ToLower(value), strings.ToLower(got.Unmap().String())) && !strings.Contains(value, got.String()):
			// Mapped or zero-compressed spellings differ from the header's
			// text; accept what parses to the same address.
			for hop := range strings.FieldsFuncSeq(value, func(r rune) bool { return r == ',' || r == ';' || r == '=' || r == '"' || r == ' ' }) {
				if ip, ok := parseHop(hop); ok && ip == got {
					return
				}
			}
			t.Fatalf("client %v named by neither %q nor the peer", got, value)
		}
	})
}
