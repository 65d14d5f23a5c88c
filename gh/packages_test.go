package gh

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// packageOf is acme's package agent-images/pi, on any registry: only the
// API is called here.
func packageOf(t *testing.T) Package {
	t.Helper()
	repo, err := name.NewRepository("ghcr.io/acme/agent-images/pi")
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := PackageFor(repo)
	if err != nil || pkg.Owner != "acme" || pkg.Name != "agent-images/pi" {
		t.Fatalf("PackageFor(%s) = %+v, %v, want acme's agent-images/pi", repo, pkg, err)
	}
	return pkg
}

// TestPackageVersionsAndDelete lists a package's versions across pages and
// deletes some, for an organisation's package and a user's: the paths
// differ, and go-github leaves a user package's nested name unescaped.
func TestPackageVersionsAndDelete(t *testing.T) {
	created := time.Date(2026, 11, 27, 3, 23, 0, 0, time.UTC)
	versions := []Version{
		{ID: 1, Digest: digest("a"), Tags: []string{"latest", "2026-11-27"}, Created: created, Updated: created.Add(time.Hour)},
		{ID: 2, Digest: digest("b"), Created: created, Updated: created},
		{ID: 3, Digest: digest("c"), Tags: []string{"pr-7"}, Created: created, Updated: created},
	}
	for owner, kind := range map[string]string{"Organization": "orgs", "User": "users"} {
		t.Run(owner, func(t *testing.T) {
			f := newFakeGitHub(t)
			f.ownerType["acme"] = owner
			f.versions["acme/agent-images/pi"] = append([]Version{}, versions...)
			c, pkg, ctx := f.client(t), packageOf(t), context.Background()
			// Compared as printed: JSON gives an empty tag list and its own
			// time zone pointer, which mean the same.
			got, err := c.PackageVersions(ctx, pkg)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(versions) {
				t.Fatalf("PackageVersions = %+v, %v, want %+v", got, err, versions)
			}
			path := "/" + kind + "/acme/packages/container/agent-images%2Fpi/versions"
			if lists := f.callsMatching("GET " + path); len(lists) != 2 {
				t.Errorf("version list calls = %q, want two pages on %s", lists, path)
			}
			deleted, err := c.DeleteVersions(ctx, pkg, versions[1:])
			if err != nil || deleted != 2 {
				t.Errorf("DeleteVersions = %d, %v, want 2 deleted", deleted, err)
			}
			if got, want := f.callsMatching("DELETE "), []string{"DELETE " + path + "/2", "DELETE " + path + "/3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("delete calls = %q, want %q", got, want)
			}
			if left := f.versions["acme/agent-images/pi"]; len(left) != 1 || left[0].ID != 1 {
				t.Errorf("versions left = %+v, want only 1", left)
			}
		})
	}
}

// Ages decide what is pruned: a version the API lists without a time, or
// under a name that is no digest, is an error, never a guess.
func TestPackageVersionsRefusesWhatItCannotAge(t *testing.T) {
	for name, v := range map[string]Version{
		"no created_at": {ID: 1, Digest: digest("a")},
		"not a digest":  {ID: 1, Digest: "latest", Created: time.Now()},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeGitHub(t)
			f.ownerType["acme"] = "Organization"
			f.versions["acme/agent-images/pi"] = []Version{v}
			if _, err := f.client(t).PackageVersions(context.Background(), packageOf(t)); err == nil {
				t.Errorf("PackageVersions(%+v) = nil error, want it refused", v)
			}
		})
	}
}

func TestDeleteVersionsGoesOnPastRefusals(t *testing.T) {
	f := newFakeGitHub(t)
	f.ownerType["acme"] = "Organization"
	var versions []Version
	for i, c := range []string{"a", "b", "c"} {
		versions = append(versions, Version{ID: int64(i + 1), Digest: digest(c), Created: time.Now()})
	}
	f.versions["acme/agent-images/pi"] = versions
	f.faults["DELETE /orgs/{owner}/packages/container/{name}/versions/{id}"] = []func(http.ResponseWriter){
		notFound, // gone already: counts as deleted
		func(w http.ResponseWriter) {
			writeJSON(w, 400, map[string]any{"message": "Publicly visible package versions with more than 5000 downloads cannot be deleted."})
		},
		secondaryRateLimit, // waited out, then deleted
	}
	deleted, err := f.client(t).DeleteVersions(context.Background(), packageOf(t), versions)
	if deleted != 2 || err == nil || !strings.Contains(err.Error(), "5000 downloads") {
		t.Errorf("DeleteVersions = %d, %v, want 2 deleted (404 counts) and the refusal reported", deleted, err)
	}
}

func TestPackageNotFound(t *testing.T) {
	f := newFakeGitHub(t)
	f.ownerType["acme"] = "Organization"
	if _, err := f.client(t).PackageVersions(context.Background(), packageOf(t)); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("PackageVersions(missing package) = %v, want not found", err)
	}
}
