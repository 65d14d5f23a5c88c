package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// serve serves h on loopback and returns its host.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func layer(t *testing.T) v1.Layer {
	t.Helper()
	l, err := random.Layer(256<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func repos(t *testing.T, host string, names ...string) []name.Repository {
	t.Helper()
	var out []name.Repository
	for _, n := range names {
		r, err := name.NewRepository(host + "/agents/" + n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// bodyBytes is what the requests to repo sent.
func bodyBytes(reqs []regproxy.Request, repo name.Repository) (n int64) {
	for _, q := range reqs {
		if strings.HasPrefix(q.Path, "/v2/"+repo.RepositoryStr()+"/") {
			n += q.BodyBytes
		}
	}
	return n
}

// tokenGate is a token registry in front of next, as GHCR is: /token
// grants any scopes asked for, and a request whose token lacks push on its
// repository, or pull on the repository a mount is from, is answered 401
// with a challenge naming only the target's scope, so a client cannot learn
// from it what the mount lacked.
type tokenGate struct {
	next http.Handler
	// mountsRefused counts mount POSTs refused for want of pull on from.
	mountsRefused atomic.Int32
	// unknown are repositories /token refuses any scope on (403): a token
	// server that fails a whole request for one scope it will not grant.
	unknown []string
}

func (g *tokenGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		for _, s := range r.URL.Query()["scope"] {
			if p := strings.Split(s, ":"); len(p) == 3 && slices.Contains(g.unknown, p[1]) {
				http.Error(w, `{"errors":[{"code":"DENIED"}]}`, http.StatusForbidden)
				return
			}
		}
		tok := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(r.URL.Query()["scope"], " ")))
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
		return
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	granted := strings.Fields(string(raw))
	may := func(repo, action string) bool {
		return slices.ContainsFunc(granted, func(s string) bool {
			p := strings.Split(s, ":")
			return len(p) == 3 && p[0] == "repository" && p[1] == repo && slices.Contains(strings.Split(p[2], ","), action)
		})
	}
	repo, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/")
	repo, _, _ = strings.Cut(repo, "/manifests/")
	action := "pull"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		action = "push"
	}
	from := r.URL.Query().Get("from")
	ok := r.Header.Get("Authorization") != "" && (r.URL.Path == "/v2/" || may(repo, action))
	if ok && from != "" && !may(from, "pull") {
		g.mountsRefused.Add(1)
		ok = false
	}
	if !ok {
		challenge := fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host)
		if r.URL.Path != "/v2/" {
			challenge += fmt.Sprintf(`,scope="repository:%s:pull,push"`, repo)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	g.next.ServeHTTP(w, r)
}

// recordedRegistry is Debian's docker-registry behind a proxy that records
// what reaches it (the in-process registry cannot mount).
func recordedRegistry(t *testing.T) *regproxy.Proxy {
	t.Helper()
	upstream, err := url.Parse("http://" + testenv.StartRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	return regproxy.To(upstream)
}

// TestMountOnTokenRegistry: on a registry whose tokens name what they
// grant, a blob this run uploaded to one repository is mounted into
// another (201, no bytes sent again): the pusher's token asks for pull on
// the source, which the registry's challenge never names.
func TestMountOnTokenRegistry(t *testing.T) {
	ctx := context.Background()
	rec := recordedRegistry(t)
	gate := &tokenGate{next: rec}
	rs := repos(t, serve(t, gate), "a", "b")
	a, b := rs[0], rs[1]
	l := layer(t)
	d, _ := l.Digest()
	r := NewRegistry()
	if err := r.PutBlob(ctx, a, l, nil, func(int64) {}); err != nil {
		t.Fatalf("PutBlob(a) = %v", err)
	}
	rec.Reset()
	if err := r.PutBlob(ctx, b, l, nil, func(int64) {}); err != nil {
		t.Fatalf("PutBlob(b) = %v", err)
	}
	mounted := false
	for _, q := range rec.Requests() {
		if q.Method == http.MethodPost && strings.Contains(q.RawQuery, "from="+url.QueryEscape(a.RepositoryStr())) {
			mounted = mounted || q.Status == http.StatusCreated
		}
		if q.Method == http.MethodHead {
			t.Errorf("%s: asked about a blob this run put in a", q)
		}
	}
	if !mounted || gate.mountsRefused.Load() != 0 {
		t.Errorf("mount from a: 201 = %v, refused for want of pull on a %d times; want mounted, never refused: %v", mounted, gate.mountsRefused.Load(), rec.Requests())
	}
	if n := bodyBytes(rec.Requests(), b); n != 0 {
		t.Errorf("%d bytes sent to b, want none (a mount)", n)
	}
	if ok, err := r.HasBlob(ctx, b, d); err != nil || !ok {
		t.Errorf("HasBlob(b) = %v, %v; want true", ok, err)
	}
}

// TestMountWhenATokenScopeIsRefused: the pusher's first token asks for
// pull on every fallback repository; a token server that refuses the
// whole request because one of them is unknown to it must not fail the
// put: the pusher asks again for what the write needs, and the blob is
// mounted from where this run put it.
func TestMountWhenATokenScopeIsRefused(t *testing.T) {
	ctx := context.Background()
	rec := recordedRegistry(t)
	rs := repos(t, serve(t, &tokenGate{next: rec, unknown: []string{"agents/missing"}}), "a", "b", "missing")
	a, b, missing := rs[0], rs[1], rs[2]
	l := layer(t)
	r := NewRegistry()
	if err := r.PutBlob(ctx, a, l, []name.Repository{missing}, func(int64) {}); err != nil {
		t.Fatalf("PutBlob(a) with an unknown fallback = %v, want nil", err)
	}
	rec.Reset()
	if err := r.PutBlob(ctx, b, l, []name.Repository{a, missing}, func(int64) {}); err != nil {
		t.Fatalf("PutBlob(b) with an unknown fallback = %v, want nil", err)
	}
	if n := bodyBytes(rec.Requests(), b); n != 0 {
		t.Errorf("%d bytes sent to b, want none (a mount from a): %v", n, rec.Requests())
	}
}

// failingPut fails the first blob PUT it sees, as a registry dropping an
// upload would, and passes the rest to next.
type failingPut struct {
	next   http.Handler
	failed atomic.Bool
}

func (f *failingPut) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && f.failed.CompareAndSwap(false, true) {
		http.Error(w, "dropped", http.StatusBadRequest)
		return
	}
	f.next.ServeHTTP(w, r)
}

// TestRefusedMountUploads: a registry that answers a mount by starting an
// upload (202, as go-containerregistry's in-process registry does) gets
// the bytes in the same upload, and the run records the blob there. A
// failed upload is tried again by the next caller, and progress ends at
// the blob's size.
func TestRefusedMountUploads(t *testing.T) {
	ctx := context.Background()
	rec := regproxy.New(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	rs := repos(t, serve(t, &failingPut{next: rec}), "a", "b")
	a, b := rs[0], rs[1]
	l := layer(t)
	d, _ := l.Digest()
	size, _ := l.Size()
	r := NewRegistry()
	if err := r.PutBlob(ctx, a, l, nil, func(int64) {}); err == nil {
		t.Fatalf("PutBlob(a) through a dropped upload = nil, want its error")
	}
	var sent int64
	if err := r.PutBlob(ctx, a, l, nil, func(n int64) { sent += n }); err != nil || sent != size {
		t.Fatalf("PutBlob(a) again = %v, %d bytes told; want nil, %d", err, sent, size)
	}
	rec.Reset()
	sent = 0
	if err := r.PutBlob(ctx, b, l, nil, func(n int64) { sent += n }); err != nil || sent != size {
		t.Fatalf("PutBlob(b) = %v, %d bytes told; want nil, %d", err, sent, size)
	}
	var refused, uploaded bool
	for _, q := range rec.Requests() {
		switch {
		case q.Method == http.MethodPost && strings.Contains(q.RawQuery, "mount="):
			refused = q.Status == http.StatusAccepted
		case q.Method == http.MethodPut:
			uploaded = q.Status == http.StatusCreated && q.BodyBytes == size
		case q.Method == http.MethodHead:
			t.Errorf("%s: asked about a blob this run put in a", q)
		}
	}
	if !refused || !uploaded {
		t.Errorf("mount refused = %v, then uploaded with its %d bytes = %v; want both: %v", refused, size, uploaded, rec.Requests())
	}
	if _, err := remote.Layer(b.Digest(d.String())); err != nil {
		t.Errorf("b lacks the blob: %v", err)
	}
	rec.Reset()
	if err := r.PutBlob(ctx, b, l, nil, func(int64) {}); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.HasBlob(ctx, b, d); err != nil || !ok || len(rec.Requests()) != 0 {
		t.Errorf("HasBlob(b) = %v, %v after %v; want true, known without a request", ok, err, rec.Requests())
	}
}
