package transport

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests' retries wait milliseconds, not seconds.
func init() { waitMin, waitMax = time.Millisecond, 5*time.Millisecond }

func TestRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := &http.Client{Transport: New()}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || calls.Load() != 3 {
		t.Errorf("Get = %d after %d calls, want 200 after 3", resp.StatusCode, calls.Load())
	}
}

func TestNotFoundIsAnAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	c := &http.Client{Transport: New()}
	resp, err := c.Head(srv.URL)
	if err != nil {
		t.Fatalf("Head = %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || calls.Load() != 1 {
		t.Errorf("Head = %d after %d calls, want 404 after 1", resp.StatusCode, calls.Load())
	}
}

func TestStreamedBodyGoesStraightThrough(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if string(b) != "layer" {
			t.Errorf("body = %q, want %q", b, "layer")
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL, io.NopCloser(strings.NewReader("layer")))
	req.GetBody = nil
	resp, err := New().RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip = %v", err)
	}
	resp.Body.Close()
	if calls.Load() != 1 {
		t.Errorf("streamed PUT made %d calls, want 1 (no replay)", calls.Load())
	}
}

// countingServer serves h on loopback and counts the connections made to it.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestPlainHTTPServerIsNotRetriedOverTLS(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c := &http.Client{Transport: New()}
	_, err := c.Get(strings.Replace(srv.URL, "http://", "https://", 1))
	if err == nil {
		t.Fatal("https GET of a plain-HTTP server succeeded")
	}
	if conns.Load() != 1 {
		t.Errorf("https GET of a plain-HTTP server connected %d times, want 1 (no retries)", conns.Load())
	}
}

func TestReopenableBodyIsResentEachTry(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "layer-bytes" || r.ContentLength != int64(len("layer-bytes")) {
			t.Errorf("try %d got body %q length %d, want the whole body with its length", calls.Load()+1, b, r.ContentLength)
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	opens := 0
	open := func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(strings.NewReader("layer-bytes")), nil
	}
	first, _ := open()
	req, _ := http.NewRequest(http.MethodPatch, srv.URL, first)
	req.GetBody = open
	req.ContentLength = int64(len("layer-bytes"))
	resp, err := New().RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip = %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || calls.Load() != 3 {
		t.Errorf("RoundTrip = %d after %d tries, want 201 after 3", resp.StatusCode, calls.Load())
	}
	if opens < 3 {
		t.Errorf("GetBody opened the body %d times, want once per try", opens)
	}
}
