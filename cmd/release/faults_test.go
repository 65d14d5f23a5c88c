package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// These tests break the registry under a signed multi-agent release and kill
// the release at the points where a half-done publish would show, then check
// what the registry holds with tools that are not ours: skopeo reads it, the
// cosign CLI verifies it.

// faultAgents are released by the fault and crash tests: two agents on
// both systems, static checks only (smoke tests are not the point here).
var faultAgents = []string{"pi", "codex"}

// signedRelease is what a signed release to one registry needs.
type signedRelease struct {
	dir      string // keys, work dir, reports
	registry string // the address release pushes to (the proxy)
	prefix   string // repository prefix under registry
	key, pub string
	env      []string
	checker  *registryChecker
}

func newSignedRelease(t *testing.T, pushTo, direct string) *signedRelease {
	t.Helper()
	dir := t.TempDir()
	const password = "crash-test"
	key, pub := writeKeyPair(t, dir, password)
	r := &signedRelease{dir: dir, registry: pushTo, prefix: "agent-images", key: key, pub: pub,
		env: []string{"COSIGN_PASSWORD=" + password, "GITHUB_ACTIONS=", "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}}
	r.checker = newRegistryChecker(t, direct+"/"+r.prefix, r.pub)
	return r
}

// args are the release command line for commit. Each commit builds a new
// index (--rebuild), so that a kill can land while one is published.
func (r *signedRelease) args(t *testing.T, commit string) []string {
	return append([]string{"--agent", strings.Join(faultAgents, ","), "--push", "--rebuild", "--registry", r.registry + "/" + r.prefix,
		"--insecure", "--key", r.key, "--runtime", "none", "--commit", commit,
		"--work-dir", filepath.Join(r.dir, "work"), "--output", filepath.Join(r.dir, "release-"+commit[:7]+".json")},
		standinArgs(t)...)
}

// TestReleaseUnderRegistryFaults runs a signed release of two agents on both
// systems through a proxy that fails every eighth request (500, 429 with
// Retry-After, 503, reset connection in turn). It must succeed, leave every
// tag on a complete signed index, and a rerun under the same faults must find
// everything unchanged.
func TestReleaseUnderRegistryFaults(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg, 8)
	r := newSignedRelease(t, proxy.Addr, reg)
	const commit = "1111111111111111111111111111111111111111"

	start := time.Now()
	out, err := execRelease(t, r.env, r.args(t, commit)...)
	if err != nil {
		t.Fatalf("release through a failing registry: %v\n%s", err, out)
	}
	t.Logf("released in %v, faults %v", time.Since(start).Round(time.Millisecond), proxy.Faults())
	faults := proxy.Faults()
	for _, kind := range []string{testenv.Fault500, testenv.Fault429, testenv.Fault503, testenv.FaultReset} {
		if faults[kind] == 0 {
			t.Errorf("the proxy injected no %s fault (%v): the release made too few requests to test", kind, faults)
		}
	}
	start = time.Now()
	first := r.checker.check(t)
	r.checker.wantConverged(t, first, commit)
	t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	out, err = execRelease(t, r.env, r.args(t, commit)...)
	if err != nil {
		t.Fatalf("rerun through a failing registry: %v\n%s", err, out)
	}
	t.Logf("reran in %v", time.Since(start).Round(time.Millisecond))
	if n := strings.Count(out, " unchanged "); n < len(faultAgents) {
		t.Errorf("rerun reported %d agents unchanged, want %d:\n%s", n, len(faultAgents), out)
	}
	if again := r.checker.check(t); !equalTags(first, again) {
		t.Errorf("tags after the rerun = %v, want them where they were: %v", again, first)
	}
	t.Logf("faults injected: %v", proxy.Faults())
}

// killPoint says when to kill a release, from the requests the registry
// answered: it returns true for the request after which to kill.
type killPoint struct {
	name string
	// fresh: the scenario starts from an empty registry (otherwise from
	// the previous scenario's converged release, so tags move).
	fresh bool
	at    func() func(testenv.Request) bool
}

var (
	manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/(.+)$`)
	indexType    = "application/vnd.oci.image.index.v1+json"
)

var killPoints = []killPoint{
	{name: "while pushing layers", fresh: true, at: func() func(testenv.Request) bool {
		uploads := 0
		return func(r testenv.Request) bool {
			if strings.Contains(r.Path, "/blobs/uploads/") && (r.Method == "PATCH" || r.Method == "PUT") {
				uploads++
			}
			return uploads == 3
		}
	}},
	{name: "after the index is pushed, before signing", at: func() func(testenv.Request) bool {
		return func(r testenv.Request) bool {
			m := manifestPath.FindStringSubmatch(r.Path)
			return r.Method == "PUT" && m != nil && strings.HasPrefix(m[2], "sha256:") && r.ContentType == indexType
		}
	}},
	{name: "after signing, before the tags", at: func() func(testenv.Request) bool {
		// The index is signed last: its signature is the .sig named after
		// the index the same repository just received.
		index := map[string]string{}
		return func(r testenv.Request) bool {
			m := manifestPath.FindStringSubmatch(r.Path)
			if r.Method != "PUT" || m == nil {
				return false
			}
			repo, ref := m[1], m[2]
			if strings.HasPrefix(ref, "sha256:") && r.ContentType == indexType {
				index[repo] = strings.TrimPrefix(ref, "sha256:")
			}
			return index[repo] != "" && ref == "sha256-"+index[repo]+".sig"
		}
	}},
	{name: "mid-tagging", at: func() func(testenv.Request) bool {
		return func(r testenv.Request) bool {
			m := manifestPath.FindStringSubmatch(r.Path)
			return r.Method == "PUT" && m != nil && !strings.HasPrefix(m[2], "sha256")
		}
	}},
}

// TestReleaseKilledAndRerun kills a signed release with SIGKILL at each
// point a crash could leave a half-published agent, then reruns it. After
// the kill every tag that exists still points at a complete, signed index;
// after the rerun every agent's tags are on the new complete, signed index.
// The scenarios share one registry and work dir, each releasing a new
// commit, so that later kills happen while tags move from an older index.
func TestReleaseKilledAndRerun(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg, 0)
	r := newSignedRelease(t, proxy.Addr, reg)
	for i, kp := range killPoints {
		if kp.fresh != (i == 0) {
			t.Fatalf("kill point %q: only the first starts from an empty registry", kp.name)
		}
		commit := strings.Repeat(fmt.Sprint(i+2), 40)
		t.Run(kp.name, func(t *testing.T) {
			trigger := kp.at()
			var mu sync.Mutex
			var once sync.Once
			killed := make(chan struct{})
			var cmd *exec.Cmd
			proxy.Watch(t, func(req testenv.Request) {
				mu.Lock()
				defer mu.Unlock()
				if cmd != nil && cmd.Process != nil && trigger(req) {
					once.Do(func() {
						_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
						close(killed)
					})
				}
			})
			out := &stampedLog{start: time.Now()}
			mu.Lock()
			start := time.Now()
			cmd = releaseCmd(t, t.Context(), r.env, r.args(t, commit)...)
			cmd.Stdout, cmd.Stderr = out, out
			err := cmd.Start()
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			t.Logf("killed %s after %v:\n%s", kp.name, time.Since(start).Round(time.Millisecond), out)
			select {
			case <-killed:
			default:
				t.Fatalf("the release ended (%v) before the kill point was reached:\n%s", err, out.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("release = %v, want killed by SIGKILL", err)
			}
			start = time.Now()
			r.checker.check(t)
			t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))

			start = time.Now()
			rerun, err := execRelease(t, r.env, r.args(t, commit)...)
			if err != nil {
				t.Fatalf("rerun after the kill: %v\n%s", err, rerun)
			}
			t.Logf("reran in %v", time.Since(start).Round(time.Millisecond))
			start = time.Now()
			r.checker.wantConverged(t, r.checker.check(t), commit)
			t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))
		})
		if t.Failed() {
			return // the next scenario starts from this one's state
		}
	}
}

// registryChecker checks a registry with skopeo and the cosign CLI only.
type registryChecker struct {
	prefix         string // direct registry address and repository prefix
	skopeo, cosign string
	pub            string
	home           string
	// verified are digests whose signatures (and, for images, attestations)
	// the CLI already checked: content-addressed, they stay verified.
	verified map[string]bool
}

func newRegistryChecker(t *testing.T, prefix, pub string) *registryChecker {
	t.Helper()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed")
	}
	return &registryChecker{prefix: prefix, skopeo: skopeo, cosign: testenv.CosignCLI(t, testenv.CosignVersion),
		pub: pub, home: t.TempDir(), verified: map[string]bool{}}
}

// check asserts that every tag of every agent, except cosign's own
// sha256-*.sig/.att, points at an index whose children exist and whose
// signatures and attestations verify, and returns agent -> tag -> digest.
func (c *registryChecker) check(t *testing.T) map[string]map[string]string {
	t.Helper()
	state := map[string]map[string]string{}
	for _, agent := range faultAgents {
		repo := c.prefix + "/" + agent
		state[agent] = map[string]string{}
		out, err := c.run("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "NAME_UNKNOWN") || strings.Contains(msg, "name unknown") || strings.Contains(msg, "not known to registry") || strings.Contains(msg, "404 (Not Found)") {
				continue // nothing pushed yet
			}
			t.Fatalf("skopeo list-tags %s: %v", repo, err)
		}
		var list struct{ Tags []string }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("skopeo list-tags %s: %v\n%s", repo, err, out)
		}
		for _, tag := range list.Tags {
			if strings.HasPrefix(tag, "sha256-") {
				continue
			}
			raw, err := c.run("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":"+tag)
			if err != nil {
				t.Errorf("%s:%s: skopeo cannot read it: %v", repo, tag, err)
				continue
			}
			var idx struct {
				MediaType string `json:"mediaType"`
				Manifests []struct {
					Digest   string `json:"digest"`
					Platform struct{ OS, Architecture string }
				} `json:"manifests"`
			}
			if err := json.Unmarshal([]byte(raw), &idx); err != nil || idx.MediaType != indexType || len(idx.Manifests) != 2 {
				t.Errorf("%s:%s = %s, want an OCI index of two platforms", repo, tag, raw)
				continue
			}
			sum := sha256.Sum256([]byte(raw))
			digest := "sha256:" + hex.EncodeToString(sum[:])
			state[agent][tag] = digest
			if c.verified[digest] {
				continue
			}
			ok := c.verify(t, repo, digest, false)
			for _, m := range idx.Manifests {
				if c.verified[m.Digest] {
					continue
				}
				if _, err := c.run("skopeo", "inspect", "--tls-verify=false", "docker://"+repo+"@"+m.Digest); err != nil {
					t.Errorf("%s:%s -> %s: child %s (%s/%s) is missing: %v", repo, tag, digest, m.Digest, m.Platform.OS, m.Platform.Architecture, err)
					ok = false
					continue
				}
				ok = c.verify(t, repo, m.Digest, true) && ok
			}
			if ok {
				c.verified[digest] = true
			} else {
				t.Errorf("%s:%s points at %s, which is not complete and signed", repo, tag, digest)
			}
		}
	}
	return state
}

// verify runs the cosign CLI on one digest: its signature and, for a
// per-arch image, both attestations.
func (c *registryChecker) verify(t *testing.T, repo, digest string, image bool) bool {
	t.Helper()
	runs := [][]string{{"verify"}}
	if image {
		runs = append(runs, []string{"verify-attestation", "--type", "cyclonedx"}, []string{"verify-attestation", "--type", "slsaprovenance1"})
	}
	ok := true
	for _, args := range runs {
		args = append(args, "--key", c.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", repo+"@"+digest)
		if _, err := c.run("cosign", args...); err != nil {
			t.Errorf("cosign %s: %v", strings.Join(args, " "), err)
			ok = false
		}
	}
	if ok {
		c.verified[digest] = true
	}
	return ok
}

// run runs skopeo or cosign and returns its standard output; the error
// carries what it printed on standard error.
func (c *registryChecker) run(tool string, args ...string) (string, error) {
	bin := c.skopeo
	if tool == "cosign" {
		bin = c.cosign
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// A private HOME keeps cosign's TUF cache and skopeo's auth lookups out
	// of the user's.
	cmd.Env = append(os.Environ(), "HOME="+c.home, "TUF_ROOT="+filepath.Join(c.home, "tuf"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// wantConverged asserts every agent's release tags for commit point at one
// index (check already found it complete and signed).
func (c *registryChecker) wantConverged(t *testing.T, state map[string]map[string]string, commit string) {
	t.Helper()
	date := time.Now().UTC().Format("2006-01-02")
	for _, agent := range faultAgents {
		tags := state[agent]
		want := tags["sha-"+commit[:7]]
		if want == "" {
			t.Errorf("%s: no tag sha-%s after the release (tags %v)", agent, commit[:7], tags)
			continue
		}
		for _, tag := range []string{"latest", date} {
			if tags[tag] != want {
				t.Errorf("%s:%s = %q, want %s, the index of sha-%s", agent, tag, tags[tag], want, commit[:7])
			}
		}
	}
}

func equalTags(a, b map[string]map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for agent, tags := range a {
		if len(tags) != len(b[agent]) {
			return false
		}
		for tag, d := range tags {
			if b[agent][tag] != d {
				return false
			}
		}
	}
	return true
}

// stampedLog keeps a process's output with the time since start on each
// write, to tell where a slow run spent its time.
type stampedLog struct {
	mu    sync.Mutex
	start time.Time
	b     strings.Builder
}

func (l *stampedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, "[%6.2fs] %s", time.Since(l.start).Seconds(), p)
	return len(p), nil
}

func (l *stampedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
