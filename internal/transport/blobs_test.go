package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobServer answers HEADs of blobs: present unless the digest is in
// missing. It counts the HEADs of each path.
type blobServer struct {
	mu    sync.Mutex
	heads map[string]int
	// missing holds digests the registry lacks.
	missing map[string]bool
}

func (b *blobServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		return
	}
	b.mu.Lock()
	b.heads[r.URL.Path]++
	b.mu.Unlock()
	if b.missing[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Length", "3")
}

func digest(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, _, err := v1.SHA256(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBlobAskedOncePerRun: however many callers ask, at once or later,
// whether a repository has a blob, the registry is asked once.
func TestBlobAskedOncePerRun(t *testing.T) {
	ctx := context.Background()
	have, lack := digest(t, "have"), digest(t, "lack")
	srv := httptest.NewServer(&blobServer{heads: map[string]int{}, missing: map[string]bool{lack.String(): true}})
	defer srv.Close()
	b := srv.Config.Handler.(*blobServer)
	host := strings.TrimPrefix(srv.URL, "http://")
	a, _ := name.NewRepository(host+"/agents/a", name.Insecure)
	r := NewRegistry()

	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tt := range []struct {
				d    v1.Hash
				want bool
			}{{have, true}, {lack, false}} {
				if got, err := r.HasBlob(ctx, a, tt.d); err != nil || got != tt.want {
					t.Errorf("HasBlob(%s) = %v, %v; want %v", tt.d, got, err, tt.want)
				}
			}
		}()
	}
	wg.Wait()
	for _, d := range []v1.Hash{have, lack} {
		if n := b.heads["/v2/agents/a/blobs/"+d.String()]; n != 1 {
			t.Errorf("%s was asked about %d times, want once", d, n)
		}
	}
}

// TestParallelRequestsReuseConnections: 32 HEADs at once, then 32 more:
// the second round finds the first round's connections idle, as a rerun's
// blob checks do image after image. The server holds every request until
// all 32 of its round have arrived, so each round needs 32 connections at
// once whatever the machine's load. With Go's default of 2 idle connections
// per host the second round opens 30 new ones; with ours, none.
func TestParallelRequestsReuseConnections(t *testing.T) {
	const n = 32
	var arrived atomic.Int32
	var all chan struct{}
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Errorf("only %d of %d requests arrived together", arrived.Load(), n)
		}
	}))
	c := &http.Client{Transport: New()}
	var opened [2]int32
	for round := range 2 {
		before := conns.Load()
		arrived.Store(0)
		all = make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Head(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
		wg.Wait()
		opened[round] = conns.Load() - before
	}
	if opened[0] != n || opened[1] != 0 {
		t.Errorf("rounds of %d HEADs at once opened %d and then %d new connections, want %d and then 0: idle connections are not kept", n, opened[0], opened[1], n)
	}
}
