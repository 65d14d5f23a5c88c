// Package regproxy records what reaches a registry. A Proxy forwards every
// request unchanged to a real registry (Debian's docker-registry over HTTP,
// or go-containerregistry's in-process one) and remembers its method, path,
// query, request-body bytes and response status, so tests can say what a
// release uploaded and the benchmark can count requests and bytes.
//
// It only records: it never delays, changes or fails a request. A proxy
// that injects faults belongs elsewhere and can wrap this one.
package regproxy

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Request is one request the proxy forwarded.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	// BodyBytes is how many request-body bytes reached the registry.
	BodyBytes int64
	// Status is the registry's answer.
	Status int
}

// String is "METHOD /path?query".
func (r Request) String() string {
	if r.RawQuery == "" {
		return r.Method + " " + r.Path
	}
	return r.Method + " " + r.Path + "?" + r.RawQuery
}

// Write reports whether the request can change the registry.
func (r Request) Write() bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// Proxy is an http.Handler that records each request and passes it on.
type Proxy struct {
	next http.Handler
	mu   sync.Mutex
	reqs []Request
}

// New records requests and hands them to next, a registry served in-process.
func New(next http.Handler) *Proxy { return &Proxy{next: next} }

// To records requests and forwards them to the registry at upstream, for
// example http://127.0.0.1:5000.
func To(upstream *url.URL) *Proxy {
	rp := httputil.NewSingleHostReverseProxy(upstream)
	// Go keeps 2 idle connections per host by default: with release's
	// dozens of requests at once, nearly every one would open (and leave in
	// TIME_WAIT) a connection to the registry, a cost of the proxy, not of
	// what it measures.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	rp.Transport = t
	return New(rp)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	var body *countingReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingReader{ReadCloser: r.Body}
		r.Body = body
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.next.ServeHTTP(sw, r)
	rec.Status = sw.status
	if body != nil {
		rec.BodyBytes = body.n
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
}

// Requests returns every request recorded since the last Reset, in the
// order they finished.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Writes returns "METHOD /path" of every request that could change the
// registry (anything but GET and HEAD).
func (p *Proxy) Writes() []string {
	var out []string
	for _, r := range p.Requests() {
		if r.Write() {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// Reset forgets everything recorded so far.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.reqs = nil
	p.mu.Unlock()
}

// Summary counts what a set of requests did to the registry.
type Summary struct {
	Requests int
	// Writes are requests other than GET and HEAD.
	Writes int
	// BytesUploaded is the sum of request bodies: blobs and manifests.
	BytesUploaded int64
	// BlobUploads are blob uploads completed with PUT ...?digest=.
	BlobUploads int
	// Mounts are blobs the registry mounted from another repository.
	Mounts int
	// ManifestPuts are manifests and indexes written, by digest or by tag.
	ManifestPuts int
}

// Summarize counts reqs.
func Summarize(reqs []Request) Summary {
	var s Summary
	for _, r := range reqs {
		s.Requests++
		s.BytesUploaded += r.BodyBytes
		if r.Write() {
			s.Writes++
		}
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") && r.Status == http.StatusCreated:
			s.BlobUploads++
		case r.Method == http.MethodPost && strings.Contains(r.RawQuery, "mount=") && r.Status == http.StatusCreated:
			s.Mounts++
		case r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/"):
			s.ManifestPuts++
		}
	}
	return s
}

// Summary counts everything recorded since the last Reset.
func (p *Proxy) Summary() Summary { return Summarize(p.Requests()) }

type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	return n, err
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
