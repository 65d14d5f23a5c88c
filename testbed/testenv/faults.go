package testenv

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Fault kinds the proxy injects, in the order it cycles through them.
const (
	Fault500   = "500"
	Fault429   = "429 Retry-After"
	Fault503   = "503"
	FaultReset = "connection reset"
	// FaultDown is every request failing with a 503 while the proxy is
	// down (SetDown): a registry that went away, not a passing fault.
	FaultDown = "down"
)

var faultCycle = []string{Fault500, Fault429, Fault503, FaultReset}

// Request is one request the proxy passed to the registry, with the status
// the registry answered.
type Request struct {
	Method      string
	Path        string // e.g. /v2/agent-images/pi/manifests/latest
	ContentType string // of the request body
	Status      int
}

// FaultProxy is a plain-HTTP proxy in front of a registry that fails every
// Nth request, cycling through a 500, a 429 with Retry-After, a 503 and a
// connection reset, or every request while it is down, and shows a test
// every request it passed on. A failed request never reaches the registry,
// so retrying it is always safe: what is tested is whether the client does.
type FaultProxy struct {
	// Addr is host:port of the proxy, to use as the registry.
	Addr string

	mu      sync.Mutex
	every   int
	down    bool
	count   int
	faults  map[string]int
	watches []func(Request)
}

// StartFaultProxy starts a proxy in front of target (host:port) that fails
// every Nth request (0: none), and stops it when the test ends.
func StartFaultProxy(t testing.TB, target string, every int) *FaultProxy {
	t.Helper()
	p := &FaultProxy{every: every, faults: map[string]int{}}
	// The Host header is left as the proxy's: the registry builds upload
	// locations from it, so clients come back through the proxy.
	backend := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	// A client killed mid-request is what some tests do: not worth a line.
	backend.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kind := p.next(); kind != "" {
			fail(w, kind)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		backend.ServeHTTP(rec, r)
		p.notify(Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Status: rec.status})
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// SetEvery changes how often requests fail; 0 stops failing them.
func (p *FaultProxy) SetEvery(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.every, p.count = n, 0
}

// SetDown makes every request fail with a 503 (true) until it is called
// with false: the registry is gone for as long as a client retries. It may
// be called from a Watch function.
func (p *FaultProxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Faults reports how many faults of each kind were injected.
func (p *FaultProxy) Faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.faults {
		out[k] = v
	}
	return out
}

// Watch calls f with every request the registry answered, after it did,
// until the test ends; f must not block.
func (p *FaultProxy) Watch(t testing.TB, f func(Request)) {
	p.mu.Lock()
	p.watches = append(p.watches, f)
	i := len(p.watches) - 1
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		p.watches[i] = nil
		p.mu.Unlock()
	})
}

// next counts a request and says which fault it gets, "" for none.
func (p *FaultProxy) next() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		p.faults[FaultDown]++
		return FaultDown
	}
	p.count++
	if p.every <= 0 || p.count%p.every != 0 {
		return ""
	}
	kind := faultCycle[(p.count/p.every-1)%len(faultCycle)]
	p.faults[kind]++
	return kind
}

func (p *FaultProxy) notify(r Request) {
	p.mu.Lock()
	watches := append([]func(Request){}, p.watches...)
	p.mu.Unlock()
	for _, f := range watches {
		if f != nil {
			f(r)
		}
	}
}

func fail(w http.ResponseWriter, kind string) {
	switch kind {
	case Fault500:
		http.Error(w, "injected fault", http.StatusInternalServerError)
	case Fault429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "injected fault: slow down", http.StatusTooManyRequests)
	case Fault503:
		http.Error(w, "injected fault", http.StatusServiceUnavailable)
	case FaultDown:
		http.Error(w, "injected fault: the registry is down", http.StatusServiceUnavailable)
	case FaultReset:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(fmt.Sprintf("hijacking a connection to reset it: %v", err))
		}
		// No lingering: the close sends a RST, as a dropped connection does.
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = conn.Close()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush passes streaming through.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
