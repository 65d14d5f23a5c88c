package gh

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub serves the REST endpoints a release uses the way api.github.com
// does: JSON bodies of the documented shapes, 201 on create, 204 on delete,
// 404 with GitHub's error body, and pagination through Link headers (with a
// small page cap so tests cross pages). Faults (a secondary rate limit) are
// injected per route.
type fakeGitHub struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	token  string
	maxPer int

	ownerType map[string]string // login -> "User" | "Organization"
	releases  map[string]map[string]any
	issues    []map[string]any
	comments  map[int][]string
	jobs      []map[string]any
	versions  map[string][]Version // "owner/package" -> versions
	nextID    int64

	// versionsFunc, when set, lists a package's versions on each request
	// (from a live registry) instead of the versions map.
	versionsFunc func(pkg string) []Version
	// onDelete runs for each deleted package version (the test deletes the
	// manifest from its registry, as GHCR does).
	onDelete func(pkg string, v Version)
	// faults: route pattern -> responses to serve before the real handler.
	faults map[string][]func(http.ResponseWriter)

	calls []string // "METHOD /escaped/path"
	wants []string // request bodies by call, "" for none
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{
		t: t, token: "test-token", maxPer: 2,
		ownerType: map[string]string{}, releases: map[string]map[string]any{},
		comments: map[int][]string{}, versions: map[string][]Version{},
		faults: map[string][]func(http.ResponseWriter){}, nextID: 100,
	}
	mux := http.NewServeMux()
	route := func(pattern string, h func(w http.ResponseWriter, r *http.Request, body []byte)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls = append(f.calls, r.Method+" "+r.URL.EscapedPath())
			f.wants = append(f.wants, string(body))
			if got := r.Header.Get("Authorization"); got != "Bearer "+f.token {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
				return
			}
			if q := f.faults[pattern]; len(q) > 0 {
				f.faults[pattern] = q[1:]
				q[0](w)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			h(w, r, body)
		})
	}

	route("GET /users/{owner}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		typ, ok := f.ownerType[r.PathValue("owner")]
		if !ok {
			notFound(w)
			return
		}
		writeJSON(w, 200, map[string]any{"login": r.PathValue("owner"), "id": 1, "type": typ})
	})

	// Releases.
	route("GET /repos/{owner}/{repo}/releases/tags/{tag}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		rel, ok := f.releases[r.PathValue("tag")]
		if !ok {
			notFound(w)
			return
		}
		writeJSON(w, 200, rel)
	})
	route("POST /repos/{owner}/{repo}/releases", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil || req["tag_name"] == nil {
			writeJSON(w, 422, map[string]any{"message": "Validation Failed"})
			return
		}
		f.nextID++
		req["id"] = f.nextID
		req["html_url"] = fmt.Sprintf("https://github.com/%s/%s/releases/tag/%s", r.PathValue("owner"), r.PathValue("repo"), req["tag_name"])
		f.releases[req["tag_name"].(string)] = req
		writeJSON(w, 201, req)
	})
	route("PATCH /repos/{owner}/{repo}/releases/{id}", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		for _, rel := range f.releases {
			if fmt.Sprint(rel["id"]) == r.PathValue("id") {
				for k, v := range req {
					rel[k] = v
				}
				writeJSON(w, 200, rel)
				return
			}
		}
		notFound(w)
	})

	// Issues.
	route("GET /repos/{owner}/{repo}/issues", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		var out []map[string]any
		for _, is := range f.issues {
			if s := r.URL.Query().Get("state"); s != "" && s != "all" && is["state"] != s {
				continue
			}
			if l := r.URL.Query().Get("labels"); l != "" && !hasLabel(is, l) {
				continue
			}
			out = append(out, is)
		}
		f.page(w, r, out)
	})
	route("POST /repos/{owner}/{repo}/issues", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Title  string   `json:"title"`
			Body   string   `json:"body"`
			Labels []string `json:"labels"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Title == "" {
			writeJSON(w, 422, map[string]any{"message": "Validation Failed"})
			return
		}
		n := len(f.issues) + 1
		labels := []map[string]any{}
		for _, l := range req.Labels {
			labels = append(labels, map[string]any{"name": l})
		}
		is := map[string]any{"number": n, "title": req.Title, "body": req.Body, "state": "open", "labels": labels,
			"html_url": fmt.Sprintf("https://github.com/%s/%s/issues/%d", r.PathValue("owner"), r.PathValue("repo"), n)}
		f.issues = append(f.issues, is)
		writeJSON(w, 201, is)
	})
	route("PATCH /repos/{owner}/{repo}/issues/{n}", func(w http.ResponseWriter, r *http.Request, body []byte) {
		is := f.issue(r.PathValue("n"))
		if is == nil {
			notFound(w)
			return
		}
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		for k, v := range req {
			is[k] = v
		}
		writeJSON(w, 200, is)
	})
	route("POST /repos/{owner}/{repo}/issues/{n}/comments", func(w http.ResponseWriter, r *http.Request, body []byte) {
		is := f.issue(r.PathValue("n"))
		if is == nil {
			notFound(w)
			return
		}
		var req struct {
			Body string `json:"body"`
		}
		_ = json.Unmarshal(body, &req)
		n := is["number"].(int)
		f.comments[n] = append(f.comments[n], req.Body)
		writeJSON(w, 201, map[string]any{"id": len(f.comments[n]), "body": req.Body})
	})

	// Workflow run jobs: {"total_count": N, "jobs": [...]}, paginated.
	route("GET /repos/{owner}/{repo}/actions/runs/{run}/jobs", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		items, link := f.slice(r, len(f.jobs))
		if link != "" {
			w.Header().Set("Link", link)
		}
		writeJSON(w, 200, map[string]any{"total_count": len(f.jobs), "jobs": f.jobs[items[0]:items[1]]})
	})

	// Container packages, for users and organisations alike. The token
	// this fake knows is a workflow's GITHUB_TOKEN, for which GitHub
	// answers the owner-wide package listing with 400 "Invalid argument."
	// (github/docs and cli/cli#9606: only the per-package endpoints take
	// that token), so the listing never lists anything here.
	for _, kind := range []string{"users", "orgs"} {
		kind := kind
		route("GET /"+kind+"/{owner}/packages", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			writeJSON(w, 400, map[string]any{"message": "Invalid argument.",
				"documentation_url": "https://docs.github.com/rest/packages/packages#list-packages-for-an-organization", "status": "400"})
		})
		route("GET /"+kind+"/{owner}/packages/container/{name}/versions", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			if !f.ownerIs(r.PathValue("owner"), kind) {
				notFound(w)
				return
			}
			vs, ok := f.versions[r.PathValue("owner")+"/"+r.PathValue("name")]
			if !ok {
				notFound(w)
				return
			}
			if f.versionsFunc != nil {
				vs = f.versionsFunc(r.PathValue("name"))
			}
			var out []map[string]any
			for _, v := range vs {
				// GHCR sets updated_at at the push too.
				updated := v.Updated
				if updated.IsZero() {
					updated = v.Created
				}
				out = append(out, map[string]any{
					"id": v.ID, "name": v.Digest, "package_html_url": "https://github.com/" + r.PathValue("owner"),
					"created_at": v.Created.UTC().Format(time.RFC3339), "updated_at": updated.UTC().Format(time.RFC3339),
					"metadata": map[string]any{"package_type": "container", "container": map[string]any{"tags": nonNil(v.Tags)}},
				})
			}
			f.page(w, r, out)
		})
		route("DELETE /"+kind+"/{owner}/packages/container/{name}/versions/{id}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			key := r.PathValue("owner") + "/" + r.PathValue("name")
			vs := f.versions[key]
			if f.versionsFunc != nil {
				vs = f.versionsFunc(r.PathValue("name"))
			}
			id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
			for i, v := range vs {
				if v.ID == id && f.ownerIs(r.PathValue("owner"), kind) {
					f.versions[key] = append(vs[:i:i], vs[i+1:]...)
					if f.onDelete != nil {
						f.onDelete(r.PathValue("name"), v)
					}
					w.WriteHeader(http.StatusNoContent)
					return
				}
			}
			notFound(w)
		})
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) ownerIs(owner, kind string) bool {
	typ := f.ownerType[owner]
	return (kind == "orgs") == (typ == "Organization")
}

func (f *fakeGitHub) issue(n string) map[string]any {
	for _, is := range f.issues {
		if strconv.Itoa(is["number"].(int)) == n {
			return is
		}
	}
	return nil
}

// slice picks the requested page of n items ([from, to)) and the Link header
// GitHub sends with it: next and last while more pages follow, prev and
// first after the first page.
func (f *fakeGitHub) slice(r *http.Request, n int) ([2]int, string) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > f.maxPer {
		per = f.maxPer
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	last := (n + per - 1) / per
	if last == 0 {
		last = 1
	}
	from := min((page-1)*per, n)
	to := min(from+per, n)
	link := func(p int, rel string) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		q := u.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u.RawQuery = q.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(page-1, "prev"), link(1, "first"))
	}
	return [2]int{from, to}, strings.Join(links, ", ")
}

func (f *fakeGitHub) page(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	span, link := f.slice(r, len(items))
	if link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, 200, nonNilMaps(items[span[0]:span[1]]))
}

// secondaryRateLimit is GitHub's answer when a client sends too much too
// fast: 403, Retry-After, and a body naming the secondary rate limit.
func secondaryRateLimit(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, 404, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func hasLabel(is map[string]any, want string) bool {
	for _, l := range is["labels"].([]map[string]any) {
		if l["name"] == want {
			return true
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMaps(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

// client is a Client for repository acme/agent-images pointed at the fake.
func (f *fakeGitHub) client(t *testing.T) *Client {
	t.Helper()
	c, err := New("acme/agent-images", WithBaseURL(f.srv.URL), WithToken(f.token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callsMatching returns the recorded calls starting with prefix.
func (f *fakeGitHub) callsMatching(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// bodyOf returns the body of the last call equal to call.
func (f *fakeGitHub) bodyOf(call string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i] == call {
			return f.wants[i]
		}
	}
	return ""
}
