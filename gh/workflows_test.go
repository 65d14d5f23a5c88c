package gh

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"gopkg.in/yaml.v3"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// The linters and runners the workflow tests install from the Go module
// proxy, pinned.
const (
	actionlintVersion = "v1.7.12"
	actVersion        = "v0.2.89"
)

var toolMu sync.Mutex

// tool installs module@version with `go install` into the user cache
// directory once and returns the binary's path.
func tool(t *testing.T, module, version string) string {
	t.Helper()
	testenv.Require(t, "go")
	toolMu.Lock()
	defer toolMu.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Base(module)
	dir := filepath.Join(cache, "agent-images", "tools", bin+"-"+version)
	path := filepath.Join(dir, bin)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	// Install beside the final place and rename, so a test killed halfway
	// never leaves a broken binary behind.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-*")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".install-*"); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", module, version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	return path
}

func notUnderAct(t *testing.T) {
	t.Helper()
	if os.Getenv("ACT") == "true" {
		t.Skip("already running inside act (ci.yml under TestActCI): not nesting workflow runs")
	}
}

func TestActionlint(t *testing.T) {
	notUnderAct(t)
	actionlint := tool(t, "github.com/rhysd/actionlint/cmd/actionlint", actionlintVersion)
	if _, err := exec.LookPath("shellcheck"); err != nil {
		// actionlint then checks everything but the scripts inside run:.
		t.Log("shellcheck is not installed: run: scripts are not shellchecked (apt-get install shellcheck)")
	}
	root := testenv.RepoRoot(t)
	cmd := exec.Command(actionlint, "-no-color")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint on .github/workflows (and action.yml, which ci.yml and release.yml use) = %v\n%s", err, out)
	}

	// The same linter must catch what the workflows avoid: an input spliced
	// into shell text, and an unknown input of our action.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(root, "action.yml"), filepath.Join(dir, "action.yml"))
	bad := `on: issues
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "${{ github.event.issue.title }}"
      - uses: ./
        with:
          agentz: pi
`
	if err := os.WriteFile(filepath.Join(dir, ".github", "workflows", "bad.yml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	git := exec.Command("git", "init", "-q")
	git.Dir = dir
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	cmd = exec.Command(actionlint, "-no-color")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("actionlint on a workflow with script injection = success, want findings")
	}
	for _, want := range []string{"potentially untrusted", `input "agentz" is not defined`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("actionlint output lacks %q:\n%s", want, out)
		}
	}
}

var (
	usesLine   = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+)`)
	pinnedUses = regexp.MustCompile(`^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$`)
	versionTag = regexp.MustCompile(`#\s*v\d+(\.\d+)*\s*$`)
)

// remoteActions returns every remote action the workflows, the template's
// workflows and action.yml use ("owner/repo@sha"), checking each is pinned
// by a full commit SHA with the version tag in a comment on the line above.
// This repository's own Action (ownAction) is not among them.
func remoteActions(t *testing.T) []string {
	t.Helper()
	root := testenv.RepoRoot(t)
	seen := map[string]bool{}
	for _, f := range actionFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, line := range lines {
			m := usesLine.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(m[1], "./") || m[1] == ownAction {
				continue
			}
			rel, _ := filepath.Rel(root, f)
			if !pinnedUses.MatchString(m[1]) {
				t.Errorf("%s:%d: %s is not pinned by a commit SHA", rel, i+1, m[1])
				continue
			}
			if i == 0 || !versionTag.MatchString(lines[i-1]) {
				t.Errorf("%s:%d: %s lacks a '# vX.Y.Z' comment on the line above naming the pinned version", rel, i+1, m[1])
			}
			seen[m[1]] = true
		}
	}
	var out []string
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// actionFiles are the files that use actions: the workflows, the
// template's workflows, .github/actions/* and action.yml.
func actionFiles(t *testing.T) []string {
	t.Helper()
	root := testenv.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	more, _ := filepath.Glob(filepath.Join(root, ".github", "actions", "*", "action.yml"))
	templates, _ := filepath.Glob(filepath.Join(root, "templates", "*", ".github", "workflows", "*.yml"))
	return append(append(append(files, more...), templates...), filepath.Join(root, "action.yml"))
}

// node24Since is, for each of GitHub's own JavaScript actions we use, the
// first major version whose action.yml says `using: node24` (their release
// notes). GitHub's runners no longer ship Node 20, so an older pin fails.
var node24Since = map[string]int{
	"actions/checkout":          5,
	"actions/setup-go":          6,
	"actions/cache":             5,
	"actions/upload-artifact":   6,
	"actions/download-artifact": 7,
}

// TestActionsRunOnNode24: every actions/* pin is of a release that runs on
// the Node GitHub's runners ship, by the version its comment names.
func TestActionsRunOnNode24(t *testing.T) {
	major := regexp.MustCompile(`#\s*v(\d+)`)
	for _, f := range actionFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, line := range lines {
			m := usesLine.FindStringSubmatch(line)
			if m == nil || !strings.HasPrefix(m[1], "actions/") {
				continue
			}
			action, _, _ := strings.Cut(m[1], "@")
			since, ok := node24Since[action]
			if !ok {
				t.Errorf("%s:%d: %s: which release of it runs on node24? add it to node24Since", f, i+1, action)
				continue
			}
			v := major.FindStringSubmatch(lines[max(i-1, 0)])
			if v == nil {
				continue // remoteActions reports the missing comment
			}
			if n, _ := strconv.Atoi(v[1]); n < since {
				t.Errorf("%s:%d: %s v%s runs on Node 20, which GitHub's runners no longer ship: want v%d or later", f, i+1, action, v[1], since)
			}
		}
	}
}

func TestWorkflowsLeastPrivilege(t *testing.T) {
	if len(remoteActions(t)) == 0 {
		t.Fatal("found no remote actions: the scan is broken")
	}
	root := testenv.RepoRoot(t)
	for _, wf := range []string{"ci.yml", "release.yml", "preview.yml", "update-flake.yml"} {
		data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", wf))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^permissions:\n  contents: read\n`).Match(data) {
			t.Errorf("%s: top-level permissions are not exactly contents: read", wf)
		}
		// Inputs and event data reach shell only through env.
		for i, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "run:") && strings.Contains(line, "${{") {
				t.Errorf("%s:%d: expression inside run: %s", wf, i+1, strings.TrimSpace(line))
			}
		}
	}
	ci, _ := os.ReadFile(filepath.Join(root, ".github", "workflows", "ci.yml"))
	for _, forbidden := range []string{"packages: write", "id-token: write", "push: \"true\""} {
		if bytes.Contains(ci, []byte(forbidden)) {
			t.Errorf("ci.yml (runs on pull requests) contains %q", forbidden)
		}
	}
	action, _ := os.ReadFile(filepath.Join(root, "action.yml"))
	for i, line := range strings.Split(string(action), "\n") {
		if strings.Contains(line, "run:") && strings.Contains(line, "${{") {
			t.Errorf("action.yml:%d: expression inside run: %s", i+1, strings.TrimSpace(line))
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// repoCopy makes a git repository in a temporary directory holding this
// repository's files (tracked and new, not ignored): act runs jobs in it in
// host mode, so release.json, out-links and the layout never land in the
// real tree, and the flake sees exactly these files.
func repoCopy(t *testing.T, edits ...func(t *testing.T, dir string)) string {
	t.Helper()
	testenv.Require(t, "git")
	root := testenv.RepoRoot(t)
	ls := exec.Command("git", "ls-files", "-co", "--exclude-standard", "-z")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" {
			continue
		}
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink/submodule
		}
		copyFile(t, src, filepath.Join(dir, f))
		if st.Mode()&0o111 != 0 {
			_ = os.Chmod(filepath.Join(dir, f), 0o755)
		}
	}
	for _, edit := range edits {
		edit(t, dir)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"remote", "add", "origin", "https://github.com/acme/agent-images"},
		{"add", "-A"},
		{"-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "snapshot"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return dir
}

// withoutQueueKey drops concurrency's queue key from release.yml. act
// v0.2.89 (the newest there is) validates workflows against a schema older
// than the key, and refuses them; act runs one workflow run at a time, so
// the key means nothing to it. TestReleaseConcurrency checks the real file.
func withoutQueueKey(t *testing.T, dir string) {
	wf := filepath.Join(dir, ".github", "workflows", "release.yml")
	data, err := os.ReadFile(wf)
	if err != nil {
		t.Fatal(err)
	}
	data = regexp.MustCompile(`(?m)^  queue: max\n`).ReplaceAll(data, nil)
	if err := os.WriteFile(wf, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withSkippableMatrices writes preview.yml's merge matrix, a list under a
// key, as one expression, as the build matrix already is. GitHub never
// evaluates the matrix of a job it skips; act v0.2.89 does, and when the
// job it needs was skipped (a fork's pull request) it stops on a key whose
// list is an expression, while it skips a job whose whole matrix is one,
// as GitHub does. Both forms give the same jobs when the matrix job ran.
func withSkippableMatrices(t *testing.T, dir string) {
	wf := filepath.Join(dir, ".github", "workflows", "preview.yml")
	data, err := os.ReadFile(wf)
	if err != nil {
		t.Fatal(err)
	}
	const key = "      matrix:\n        agent: ${{ fromJSON(needs.matrix.outputs.agents) }}\n"
	if !bytes.Contains(data, []byte(key)) {
		t.Fatal("preview.yml's merge job has no agent matrix from the matrix job's outputs: update withSkippableMatrices")
	}
	data = bytes.Replace(data, []byte(key), []byte("      matrix: ${{ fromJSON(format('{{\"agent\":{0}}}', needs.matrix.outputs.agents)) }}\n"), 1)
	if err := os.WriteFile(wf, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// actLine is one line of `act --json` output.
type actLine struct {
	Msg        string `json:"msg"`
	Job        string `json:"job"`
	JobID      string `json:"jobID"`
	JobResult  string `json:"jobResult"`
	Stage      string `json:"stage"`
	Step       string `json:"step"`
	StepResult string `json:"stepResult"`
	Command    string `json:"command"`
	Name       string `json:"name"`
	Arg        string `json:"arg"`
	Content    string `json:"content"`
	Raw        bool   `json:"raw_output"`
}

type actRun struct {
	lines []actLine
	log   string
	err   error
}

var matrixSuffix = regexp.MustCompile(`-\d+$`)

// job is the line's job name without act's "<workflow>/" prefix and "-N"
// matrix suffix: the name GitHub shows.
func (l actLine) job() string {
	j := strings.TrimSpace(l.Job)
	if _, rest, ok := strings.Cut(j, "/"); ok {
		j = rest
	}
	return matrixSuffix.ReplaceAllString(j, "")
}

// jobs maps each job's name to its result.
func (r actRun) jobs() map[string]string {
	out := map[string]string{}
	for _, l := range r.lines {
		if l.JobResult != "" {
			out[l.job()] = l.JobResult
		}
	}
	return out
}

// outputs returns every value a job set for an output name.
func (r actRun) outputs(job, name string) []string {
	var out []string
	for _, l := range r.lines {
		if l.Command == "set-output" && l.job() == job && l.Name == name {
			out = append(out, l.Arg)
		}
	}
	return out
}

// summaries returns the step summaries a job wrote.
func (r actRun) summaries(job string) string {
	var b strings.Builder
	for _, l := range r.lines {
		if l.Command == "summary" && l.job() == job {
			b.WriteString(l.Content)
		}
	}
	return b.String()
}

// runAct runs one workflow in host mode: every runner label maps to this
// machine, every remote action to its stub under testdata/act/stubs.
func runAct(t *testing.T, repo, event, workflow string, args ...string) actRun {
	t.Helper()
	act := tool(t, "github.com/nektos/act", actVersion)
	stubs, err := filepath.Abs(filepath.Join("testdata", "act", "stubs"))
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{event, "-W", filepath.Join(".github", "workflows", workflow), "--json",
		"-P", "ubuntu-24.04=-self-hosted", "-P", "ubuntu-24.04-arm=-self-hosted", "-P", "ubuntu-latest=-self-hosted",
		"--action-offline-mode", "--no-cache-server", "--action-cache-path", filepath.Join(t.TempDir(), "act-cache"),
	}
	for _, uses := range remoteActions(t) {
		repoName := strings.Split(strings.SplitN(uses, "@", 2)[0], "/")[1]
		stub := filepath.Join(stubs, repoName)
		if _, err := os.Stat(filepath.Join(stub, "action.yml")); err != nil {
			t.Fatalf("no act stub for %s: add %s/action.yml", uses, stub)
		}
		argv = append(argv, "--local-repository", uses+"="+stub)
	}
	argv = append(argv, args...)
	// Stop act (and the jobs it started, in its process group) before the
	// test binary's deadline, so a hung job fails this test with its log
	// instead of leaving act running after the test binary is gone.
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, act, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = repo
	// A private config home: act then reads no ~/.config/act/actrc of the
	// machine's user and never asks which image to use.
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	run := actRun{log: out.String(), err: runErr}
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l actLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			run.lines = append(run.lines, l)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("act %s:\n%s", strings.Join(argv, " "), humanLog(run))
	}
	return run
}

// humanLog renders act's JSON log the way act prints it without --json.
func humanLog(r actRun) string {
	var b strings.Builder
	for _, l := range r.lines {
		fmt.Fprintf(&b, "[%s] %s\n", strings.TrimSpace(l.Job), strings.TrimRight(l.Msg, "\n"))
	}
	return b.String()
}

// TestActRelease runs release.yml for real under act: the matrix job, a
// build job per (agent, system) pushing by digest to a local registry, the
// merge job assembling the index and moving the tags, and the summary job
// talking to a GitHub API the test serves. First as a v* tag push (which
// writes the GitHub Release), then as the nightly (which closes the open
// failure issue, and finds the release unchanged).
func TestActRelease(t *testing.T) {
	notUnderAct(t)
	testenv.Require(t, "nix", "podman", "git", "go", "docker-registry")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t)
	repo := repoCopy(t, withoutQueueKey)
	api := newFakeGitHub(t)
	api.maxPer = 100
	overrides := testenv.StandinOverrides(t)
	// Like GHCR: <registry>/<owner>/agent-images/<agent>, so prune finds the
	// owner (acme) and the package (agent-images/pi) in the path.
	prefix := reg + "/acme/agent-images"
	// Key-based signing: act has no OIDC token for keyless. The key reaches
	// the merge job the way a repository would pass it, as secrets.
	const password = "act-test-password"
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, keys.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	artifacts := t.TempDir()
	args := []string{
		"--var", "RELEASE_SIGN_KEY=env://COSIGN_PRIVATE_KEY",
		"-s", "COSIGN_PRIVATE_KEY=" + string(keys.PrivateBytes),
		"-s", "COSIGN_PASSWORD=" + password,
		"--var", "RELEASE_REGISTRY=" + prefix,
		"--var", "RELEASE_INSECURE=true",
		"--var", "RELEASE_AGENTS=pi",
		"--var", "RELEASE_EXTRA_ARGS=" + overrideArgs(overrides, "--override-input "),
		"--env", "ACT_ARTIFACTS=" + artifacts,
		"--env", "GITHUB_API_URL=" + api.srv.URL,
		"--env", "GITHUB_RUN_ID=4242",
		"-s", "GITHUB_TOKEN=" + api.token,
	}
	wantJobs := map[string]string{
		"matrix": "success", "build pi x86_64-linux": "success", "build pi aarch64-linux": "success",
		"merge pi": "success", "summary": "success",
	}

	event := filepath.Join(t.TempDir(), "tag.json")
	if err := os.WriteFile(event, []byte(`{"ref":"refs/tags/v0.1.0","repository":{"default_branch":"main"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tagRun := runAct(t, repo, "push", "release.yml", append(args, "-e", event)...)
	wantTagJobs := map[string]string{"github-release": "success"}
	for k, v := range wantJobs {
		wantTagJobs[k] = v
	}
	if got := tagRun.jobs(); !equalMaps(got, wantTagJobs) || tagRun.err != nil {
		t.Fatalf("act push v0.1.0: jobs %v (%v), want %v\n%s", got, tagRun.err, wantTagJobs, humanLog(tagRun))
	}

	// The matrix job's output drove the build jobs: one per system, each on
	// its native runner label.
	var m struct {
		Include []struct{ Agent, System, Runner string }
	}
	outs := tagRun.outputs("matrix", "matrix")
	if len(outs) == 0 || json.Unmarshal([]byte(outs[len(outs)-1]), &m) != nil || len(m.Include) != 2 {
		t.Fatalf("matrix output = %q, want pi on two systems", outs)
	}
	for _, e := range m.Include {
		want := map[string]string{"x86_64-linux": "ubuntu-24.04", "aarch64-linux": "ubuntu-24.04-arm"}[e.System]
		if e.Agent != "pi" || e.Runner != want {
			t.Errorf("matrix entry %+v, want pi on %s", e, want)
		}
	}
	if got := tagRun.outputs("matrix", "agents"); len(got) == 0 || got[len(got)-1] != `["pi"]` {
		t.Errorf("agents output = %q, want [\"pi\"]", got)
	}
	if got := tagRun.outputs("matrix", "missing"); len(got) == 0 || got[len(got)-1] != `[]` {
		t.Errorf("missing output = %q, want [] (the stand-ins provide pi on both systems)", got)
	}

	// The merge job's Action outputs name the index the registry now has.
	digests := tagRun.outputs("merge pi", "digests")
	var byAgent map[string]string
	if len(digests) == 0 || json.Unmarshal([]byte(digests[len(digests)-1]), &byAgent) != nil || byAgent["pi"] == "" {
		t.Fatalf("merge digests output = %q, want pi's index digest", digests)
	}
	index := byAgent["pi"]
	// The git tag, and its semantic version's series (0.x has no major tag).
	assertIndex(t, prefix+"/pi", index, "latest", "v0.1.0", "0.1.0", "0.1")
	if _, err := remote.Head(mustDigest(t, prefix+"/pi@"+index).Context().Tag("0")); err == nil {
		t.Errorf("v0.1.0 moved the tag 0: a 0.x release has no major series")
	}
	assertBuiltByRecords(t, tagRun, artifacts, prefix+"/pi", index)

	verify(t, repo, "pi", prefix, pub, "v0.1.0")

	summary := tagRun.summaries("summary")
	if !strings.Contains(summary, "| pi | `"+prefix+"/pi@"+index+"` |") || !strings.Contains(summary, "v0.1.0") {
		t.Errorf("summary job's step summary = %q, want a row for pi with %s and tag v0.1.0", summary, index)
	}
	rel, ok := api.releases["v0.1.0"]
	if !ok {
		t.Fatalf("no GitHub Release for v0.1.0; API calls: %q", api.callsMatching(""))
	}
	if body, _ := rel["body"].(string); !strings.Contains(body, prefix+"/pi@"+index) {
		t.Errorf("release notes = %q, want pi's index %s", body, index)
	}
	if n := len(api.callsMatching("POST /repos/acme/agent-images/issues")); n != 0 {
		t.Errorf("a tag release touched issues (%d calls), want only the nightly to", n)
	}

	// The nightly, with a failure issue still open from an earlier night,
	// and in the registry an untagged image of a run that died before its
	// merge: the nightly's prune job deletes it and nothing else.
	orphan := pushOrphan(t, prefix+"/pi")
	api.ownerType["acme"] = "Organization"
	api.versions["acme/agent-images/pi"] = nil
	api.versionsFunc = registryVersions(t, prefix, orphan)
	api.onDelete = func(pkg string, v Version) {
		r, _ := name.NewRepository(reg+"/acme/"+pkg, name.Insecure)
		if err := remote.Delete(r.Digest(v.Digest)); err != nil {
			t.Errorf("deleting %s: %v", v.Digest, err)
		}
	}
	// pi's derivations are those of its index, so the matrix job leaves it
	// out: no build or merge job runs, and the summary still reports it.
	args = append(args, "--var", "PRUNE_KEEP=3")
	wantJobs = map[string]string{"matrix": "success", "summary": "success", "prune": "success", "nightly-issue": "success"}
	api.issues = append(api.issues, map[string]any{"number": 1, "title": NightlyTitle, "state": "open",
		"labels": []map[string]any{{"name": NightlyLabel}}})
	for name, result := range wantJobs {
		api.jobs = append(api.jobs, map[string]any{"id": len(api.jobs) + 1, "name": name, "status": "completed", "conclusion": result})
	}
	// Artifacts belong to their run: the nightly sees none of the tag run's.
	clearDir(t, artifacts)
	nightly := runAct(t, repo, "schedule", "release.yml", args...)
	ran := nightly.jobs()
	for job, result := range ran {
		if result == "skipped" {
			delete(ran, job)
		}
	}
	if !equalMaps(ran, wantJobs) || nightly.err != nil {
		t.Fatalf("act schedule: jobs %v (%v), want %v\n%s", nightly.jobs(), nightly.err, wantJobs, humanLog(nightly))
	}
	if got := nightly.outputs("matrix", "agents"); len(got) == 0 || got[len(got)-1] != `[]` {
		t.Errorf("nightly agents output = %q, want [] (pi unchanged)", got)
	}
	unchanged, err := record.ReadReport(filepath.Join(artifacts, "release-unchanged", "release-unchanged.json"))
	if err != nil {
		t.Fatalf("the matrix job's release-unchanged artifact: %v", err)
	}
	if len(unchanged.Agents) != 1 || !unchanged.Agents[0].SameDerivation || unchanged.Agents[0].Status != record.StageUnchanged || unchanged.Agents[0].Index.String() != index {
		t.Errorf("release-unchanged.json = %+v, want pi unchanged at %s", unchanged.Agents, index)
	}
	if api.issues[0]["state"] != "closed" || len(api.comments[1]) != 1 ||
		!strings.Contains(api.comments[1][0], "https://github.com/acme/agent-images/actions/runs/4242") {
		t.Errorf("nightly issue = %v, comments %q: want closed with a comment linking run 4242", api.issues[0]["state"], api.comments[1])
	}
	if got := api.callsMatching("GET /repos/acme/agent-images/actions/runs/4242/jobs"); len(got) != 1 {
		t.Errorf("run job listings = %q, want one for run 4242", got)
	}
	if s := nightly.summaries("summary"); !strings.Contains(s, "| pi | `"+prefix+"/pi@"+index+"` |") || !strings.Contains(s, "| no |") {
		t.Errorf("nightly summary = %q, want pi unchanged at %s", s, index)
	}
	assertIndex(t, prefix+"/pi", index, "latest", "v0.1.0")
	deletes := api.callsMatching("DELETE ")
	if want := fmt.Sprintf("DELETE /orgs/acme/packages/container/agent-images%%2Fpi/versions/%d", versionID(orphan)); len(deletes) != 1 || deletes[0] != want {
		t.Errorf("prune deleted %q, want only the orphan (%s)", deletes, want)
	}
	if _, err := remote.Head(mustDigest(t, prefix+"/pi@"+orphan)); err == nil {
		t.Errorf("orphan %s is still in the registry after prune", orphan)
	}
	verify(t, repo, "pi", prefix, pub, "latest")
}

// clearDir removes what dir holds, leaving it empty.
func clearDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// assertBuiltByRecords checks that each build job handed its build record
// to merge as an artifact (and as its build-record output), and that the
// index merge published lists exactly the recorded, signed digests.
func assertBuiltByRecords(t *testing.T, run actRun, artifacts, repo, index string) {
	t.Helper()
	recorded := map[string]string{}
	for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
		job := "build pi " + sys
		if outs := run.outputs(job, "build-record"); len(outs) == 0 || !strings.Contains(outs[len(outs)-1], record.BuildSchema) {
			t.Errorf("%s: build-record output = %q, want the build record", job, outs)
		}
		builds, err := record.ReadBuilds(filepath.Join(artifacts, "build-pi-"+sys+"-attempt-1"))
		if err != nil {
			t.Fatalf("%s artifact: %v", job, err)
		}
		for _, b := range builds {
			if b.Run == nil || b.Run.Attempt != 1 {
				t.Errorf("%s recorded run %+v, want attempt 1 of the run", job, b.Run)
			}
			for _, img := range b.Images {
				if img.Failed() || img.Signature == nil || img.DrvPath == "" || img.Smoke == nil {
					t.Errorf("%s recorded %+v, want a signed, tested image with its derivation", job, img)
				}
				recorded[img.Platform.String()] = img.Digest.String()
			}
		}
	}
	r, _ := name.NewRepository(repo, name.Insecure)
	idx, err := remote.Index(r.Digest(index))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	got := map[string]string{}
	for _, d := range m.Manifests {
		got[d.Platform.String()] = d.Digest.String()
	}
	if !equalMaps(got, recorded) {
		t.Errorf("index %s lists %v, the build records say %v", index, got, recorded)
	}
}

// overrideArgs joins NAME=REF pairs with spaces, each after prefix, in a
// stable order: the form the workflows' variables take.
func overrideArgs(overrides map[string]string, prefix string) string {
	names := make([]string, 0, len(overrides))
	for n := range overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, prefix+n+"="+overrides[n])
	}
	return strings.Join(parts, " ")
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPullRequestsPublishOnlyPreviews holds the workflows to the tag
// policy for pull requests, where GitHub's own rules make a fork safe: a
// pull_request event from a fork gets a read-only token, no secrets and no
// OIDC token. So no workflow may use pull_request_target (which runs with
// the base repository's token and secrets); ci.yml, which every pull
// request runs, can neither push nor sign; and preview.yml runs its jobs
// only for pull requests of this repository, reads no secret, and moves
// nothing but pr-<N>.
func TestPullRequestsPublishOnlyPreviews(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	templates, _ := filepath.Glob(filepath.Join(root, "templates", "*", ".github", "workflows", "*.yml"))
	type job struct {
		If          string            `yaml:"if"`
		Needs       any               `yaml:"needs"`
		Permissions map[string]string `yaml:"permissions"`
		Steps       []struct {
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	}
	type workflow struct {
		On   map[string]any `yaml:"on"`
		Jobs map[string]job `yaml:"jobs"`
	}
	read := func(f string) (workflow, []byte) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var wf workflow
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return wf, data
	}
	onPullRequest := map[string]bool{}
	for _, f := range append(files, templates...) {
		wf, _ := read(f)
		rel, _ := filepath.Rel(root, f)
		if _, ok := wf.On["pull_request_target"]; ok {
			t.Errorf("%s runs on pull_request_target, which gives a fork's pull request this repository's token and secrets", rel)
		}
		if _, ok := wf.On["pull_request"]; ok {
			onPullRequest[filepath.Base(f)] = true
		}
	}
	if want := map[string]bool{"ci.yml": true, "preview.yml": true}; !maps.Equal(onPullRequest, want) {
		t.Errorf("workflows run on pull_request: %v, want exactly %v", onPullRequest, want)
	}

	wf, data := read(filepath.Join(root, ".github", "workflows", "preview.yml"))
	if len(wf.On) != 1 {
		t.Errorf("preview.yml runs on %v, want pull_request alone", wf.On)
	}
	if bytes.Contains(data, []byte("secrets.")) {
		t.Error("preview.yml reads a secret: a preview is signed keyless, as the pull request, or not at all")
	}
	const sameRepo = "github.event.pull_request.head.repo.full_name == github.repository"
	gated := map[string]bool{}
	for name, j := range wf.Jobs {
		if strings.Contains(j.If, sameRepo) {
			gated[name] = true
		}
	}
	if len(gated) == 0 {
		t.Fatalf("no job of preview.yml checks %q", sameRepo)
	}
	// A job runs for a fork only if it is not gated and needs no gated job
	// (GitHub skips the jobs that need a skipped one, unless their if says
	// always(); these say !cancelled() at most, which a skipped need fails
	// through needs.matrix.result).
	for name, j := range wf.Jobs {
		var needs []string
		switch n := j.Needs.(type) {
		case string:
			needs = []string{n}
		case []any:
			for _, x := range n {
				needs = append(needs, fmt.Sprint(x))
			}
		}
		reaches := gated[name] || slices.ContainsFunc(needs, func(n string) bool { return gated[n] })
		if !reaches {
			t.Errorf("preview.yml job %s can run for a fork's pull request: gate it on %q or make it need a job that is", name, sameRepo)
		}
		if strings.Contains(j.If, "always()") {
			t.Errorf("preview.yml job %s runs always(), even when the gated job it needs was skipped for a fork", name)
		}
		for _, st := range j.Steps {
			if st.With["command"] != "merge" && st.With["command"] != "release" {
				continue
			}
			if st.With["preview"] != "${{ github.event.pull_request.number }}" || st.With["tags"] != "" || st.With["git-tag"] != "" {
				t.Errorf("preview.yml job %s publishes with %v: want preview set to the pull request's number and no other tag", name, st.With)
			}
		}
	}
}

// TestActPreview runs preview.yml under act for a pull request event: one
// from a fork (the event's head repository is not this one), which must
// publish nothing, then one from a branch of this repository, which builds,
// smoke-tests and publishes pi as pr-7 and moves no other tag. One agent on
// one system keeps it short; unsigned, since act has no OIDC token for the
// keyless signing previews use.
func TestActPreview(t *testing.T) {
	notUnderAct(t)
	testenv.Require(t, "nix", "podman", "git", "go", "docker-registry")
	testenv.Setenv(t)
	reg := testenv.StartRegistry(t)
	repo := repoCopy(t, withSkippableMatrices)
	prefix := reg + "/acme/agent-images"
	args := []string{
		"--var", "RELEASE_REGISTRY=" + prefix,
		"--var", "RELEASE_INSECURE=true",
		"--var", "RELEASE_SIGN=false",
		"--var", "PREVIEW_AGENTS=pi",
		"--var", "RELEASE_EXTRA_ARGS=--system x86_64-linux " + overrideArgs(testenv.StandinOverrides(t), "--override-input "),
		"--env", "ACT_ARTIFACTS=" + t.TempDir(),
	}
	event := func(headRepo string) string {
		f := filepath.Join(t.TempDir(), "pull_request.json")
		ev := map[string]any{
			"action": "synchronize",
			"number": 7,
			"pull_request": map[string]any{
				"number": 7,
				"head":   map[string]any{"ref": "feature", "repo": map[string]any{"full_name": headRepo}},
				"base":   map[string]any{"ref": "main", "repo": map[string]any{"full_name": "acme/agent-images"}},
			},
			"repository": map[string]any{"full_name": "acme/agent-images", "default_branch": "main"},
		}
		b, _ := json.Marshal(ev)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	piRepo, err := name.NewRepository(prefix+"/pi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}

	fork := runAct(t, repo, "pull_request", "preview.yml", append(args, "-e", event("mallory/agent-images"))...)
	if fork.err != nil {
		t.Fatalf("act pull_request from a fork: %v\n%s", fork.err, humanLog(fork))
	}
	// act reports no result for a skipped job.
	if ran := fork.jobs(); len(ran) > 0 {
		t.Errorf("a fork's pull request ran jobs %v, want every job skipped", ran)
	}
	if tags, err := remote.List(piRepo); err == nil || len(tags) > 0 {
		t.Fatalf("after a fork's pull request the registry has %s tags %v (%v), want nothing pushed", piRepo, tags, err)
	}

	same := runAct(t, repo, "pull_request", "preview.yml", append(args, "-e", event("acme/agent-images"))...)
	want := map[string]string{"matrix": "success", "build pi x86_64-linux": "success", "merge pi": "success"}
	if got := same.jobs(); !equalMaps(got, want) || same.err != nil {
		t.Fatalf("act pull_request from this repository: jobs %v (%v), want %v\n%s", got, same.err, want, humanLog(same))
	}
	digests := same.outputs("merge pi", "digests")
	var byAgent map[string]string
	if len(digests) == 0 || json.Unmarshal([]byte(digests[len(digests)-1]), &byAgent) != nil || byAgent["pi"] == "" {
		t.Fatalf("merge digests output = %q, want pi's preview index", digests)
	}
	tags, err := remote.List(piRepo)
	if err != nil {
		t.Fatal(err)
	}
	var release []string
	for _, tag := range tags {
		if !strings.HasPrefix(tag, "staging-") {
			release = append(release, tag)
		}
	}
	if !slices.Equal(release, []string{"pr-7"}) {
		t.Errorf("a pull request's preview tagged %v (besides staging), want only pr-7", tags)
	}
	desc, err := remote.Head(piRepo.Tag("pr-7"))
	if err != nil || desc.Digest.String() != byAgent["pi"] {
		t.Errorf("pr-7 = %v, %v; want the preview's index %s", desc, err, byAgent["pi"])
	}
}

// TestActCI runs ci.yml for real under act, offline: the repository
// variables point it at the stand-in flake inputs and one agent; the test
// job, which is the whole suite, is left out (withoutTestJob).
func TestActCI(t *testing.T) {
	notUnderAct(t)
	testenv.Require(t, "nix", "podman", "git", "go")
	testenv.Setenv(t)
	repo := repoCopy(t, withoutTestJob)
	o := testenv.StandinOverrides(t)
	run := runAct(t, repo, "push", "ci.yml",
		"--var", "CI_OVERRIDE_INPUTS="+overrideArgs(o, ""),
		"--var", "CI_SMOKE_AGENTS=pi",
	)
	want := map[string]string{
		"actionlint": "success", "flake": "success",
		"smoke x86_64-linux": "success", "smoke aarch64-linux": "success",
	}
	if got := run.jobs(); !equalMaps(got, want) || run.err != nil {
		t.Fatalf("act push ci.yml: jobs %v (%v), want %v\n%s", got, run.err, want, humanLog(run))
	}
	// The smoke jobs released pi for their system into a local layout, with
	// the smoke results in the step summary.
	for _, job := range []string{"smoke x86_64-linux", "smoke aarch64-linux"} {
		if s := run.summaries(job); !strings.Contains(s, "pi") {
			t.Errorf("%s step summary = %q, want pi's result", job, s)
		}
	}
}

// TestReRunReplacesTheBuildRecord follows a build record through the
// workflows' own steps across "Re-run failed jobs", with artifacts behaving
// as upload-artifact v4 and later document: a name is one per workflow run,
// uploading it again fails with 409 Conflict unless overwrite is true, and
// a later attempt's download-artifact sees the artifacts every attempt of
// the run uploaded. Attempt 1 builds pi for x86_64 and fails on aarch64;
// attempt 2 re-runs only the failed job. Its record must be uploaded, and
// merge, given every record its download step fetches, must take attempt
// 2's for aarch64 and attempt 1's for x86_64 (record.Newest, as Merge
// does). What only GitHub can show: that its artifact service keeps to
// that documented behaviour, and the run attempt it hands a re-run.
func TestReRunReplacesTheBuildRecord(t *testing.T) {
	type step struct {
		Uses string            `yaml:"uses"`
		With map[string]string `yaml:"with"`
	}
	type workflow struct {
		Jobs map[string]struct {
			Steps []step `yaml:"steps"`
		} `yaml:"jobs"`
	}
	root := testenv.RepoRoot(t)
	for _, wf := range []string{".github/workflows/release.yml", ".github/workflows/preview.yml", "templates/default/.github/workflows/agent-images.yml"} {
		t.Run(filepath.Base(wf), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, wf))
			if err != nil {
				t.Fatal(err)
			}
			var w workflow
			if err := yaml.Unmarshal(data, &w); err != nil {
				t.Fatalf("%s: %v", wf, err)
			}
			var build, upload, download step
			for _, st := range w.Jobs["build"].Steps {
				switch {
				case st.With["command"] == "build":
					build = st
				case strings.HasPrefix(st.Uses, "actions/upload-artifact@"):
					upload = st
				}
			}
			for _, st := range w.Jobs["merge"].Steps {
				if strings.HasPrefix(st.Uses, "actions/download-artifact@") {
					download = st
				}
			}
			if build.With == nil || upload.With == nil || download.With == nil {
				t.Fatalf("%s: want a build job that builds and uploads its record and a merge job that downloads them", wf)
			}
			expand := func(expr string, vars map[string]string) string {
				t.Helper()
				for k, v := range vars {
					expr = strings.ReplaceAll(expr, "${{ "+k+" }}", v)
				}
				if strings.Contains(expr, "${{") {
					t.Fatalf("%s: %q uses more than %v", wf, expr, vars)
				}
				return expr
			}

			artifacts := map[string]map[string][]byte{} // name -> file -> content
			runBuild := func(system string, attempt int, failure string) error {
				vars := map[string]string{"matrix.agent": "pi", "matrix.system": system, "github.run_attempt": strconv.Itoa(attempt)}
				file := expand(build.With["output"], vars)
				if path := expand(upload.With["path"], vars); path != file {
					t.Fatalf("%s: the build writes %s, the upload takes %s", wf, file, path)
				}
				img := &record.Image{Agent: "pi", System: system, DrvPath: "/nix/store/" + system + "-pi.drv", Error: failure}
				rec := record.Build{Schema: record.BuildSchema, Run: &record.Run{ID: "4242", Attempt: attempt}, Images: []*record.Image{img}}
				content, err := json.Marshal(rec)
				if err != nil {
					t.Fatal(err)
				}
				name := expand(upload.With["name"], vars)
				if _, ok := artifacts[name]; ok && upload.With["overwrite"] != "true" {
					return fmt.Errorf("uploading %s: an artifact with this name already exists on the workflow run (409 Conflict)", name)
				}
				artifacts[name] = map[string][]byte{filepath.Base(file): content}
				return nil
			}
			if err := runBuild("x86_64-linux", 1, ""); err != nil {
				t.Fatal(err)
			}
			if err := runBuild("aarch64-linux", 1, "nix build failed"); err != nil {
				t.Fatal(err)
			}
			if err := runBuild("aarch64-linux", 2, ""); err != nil {
				t.Fatalf("the re-run of build pi aarch64-linux lost its record: %v", err)
			}

			// The merge job's download: every matching artifact of the run,
			// merged into one directory.
			if download.With["merge-multiple"] != "true" {
				t.Fatalf("%s: merge downloads with merge-multiple %q, want true", wf, download.With["merge-multiple"])
			}
			pattern := expand(download.With["pattern"], map[string]string{"matrix.agent": "pi"})
			dir := t.TempDir()
			from := map[string]string{}
			for name, files := range artifacts {
				if ok, _ := filepath.Match(pattern, name); !ok {
					continue
				}
				for file, content := range files {
					if other, ok := from[file]; ok {
						t.Errorf("%s: artifacts %s and %s both hold %s: merge-multiple keeps one of them, in no promised order", wf, other, name, file)
					}
					from[file] = name
					if err := os.WriteFile(filepath.Join(dir, file), content, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			builds, err := record.ReadBuilds(dir)
			if err != nil {
				t.Fatal(err)
			}
			for system, wantAttempt := range map[string]int{"x86_64-linux": 1, "aarch64-linux": 2} {
				var naming []*record.Build
				for _, b := range builds {
					if b.Images[0].System == system {
						naming = append(naming, b)
					}
				}
				got, err := record.Newest(naming)
				if err != nil {
					t.Errorf("merge's choice for pi/%s: %v", system, err)
					continue
				}
				if got.Run.Attempt != wantAttempt || got.Images[0].Failed() {
					t.Errorf("merge takes pi/%s from attempt %d (failed: %v), want attempt %d's good record", system, got.Run.Attempt, got.Images[0].Failed(), wantAttempt)
				}
			}
		})
	}
}

// withoutTestJob drops ci.yml's test job from a repository copy. It runs
// the whole of scripts/test.sh in a Debian container: act would start that
// container with Docker and nest every test of this suite, this one
// included. TestCIRunsTheREADMETestCommand checks the job instead.
func withoutTestJob(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, ".github", "workflows", "ci.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start, end := strings.Index(s, "\n  test:\n"), strings.Index(s, "\n  actionlint:\n")
	if start < 0 || end < start {
		t.Fatal("ci.yml: no test job before the actionlint job")
	}
	if err := os.WriteFile(path, []byte(s[:start]+s[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCIRunsTheREADMETestCommand: ci.yml's test job is the README's test
// command in the environment it runs in here, a privileged Debian bookworm
// container with Go from setup-go; nothing of the Ubuntu runner's own
// packages (setup-host.sh on Ubuntu, sudo), and no flake.lock handed
// around as an artifact: Nix ignores an untracked lock in a git flake, so
// only the committed one counts. What GitHub alone can show is that the
// hosted runner starts this container privileged and the suite passes there.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	root := testenv.RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, line := range strings.Split(string(readme), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], "scripts/test.sh") {
			command = f[0]
			break
		}
	}
	if command == "" {
		t.Fatal("README.md names no scripts/test.sh command")
	}
	data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var ci struct {
		Jobs map[string]struct {
			Container struct {
				Image   string `yaml:"image"`
				Options string `yaml:"options"`
			} `yaml:"container"`
			Steps []struct {
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &ci); err != nil {
		t.Fatalf("ci.yml: %v", err)
	}
	job, ok := ci.Jobs["test"]
	if !ok {
		t.Fatal("ci.yml has no test job")
	}
	if job.Container.Image != "debian:bookworm" || !strings.Contains(job.Container.Options, "--privileged") {
		t.Errorf("ci.yml test job container = %q with options %q, want debian:bookworm, --privileged", job.Container.Image, job.Container.Options)
	}
	var runs, goVersion bool
	for _, st := range job.Steps {
		if strings.TrimSpace(st.Run) == "bash "+command {
			runs = true
		}
		if strings.HasPrefix(st.Uses, "actions/setup-go@") && st.With["go-version"] != "" {
			goVersion = true
		}
		for _, ubuntu := range []string{"setup-host.sh", "sudo "} {
			if strings.Contains(st.Run, ubuntu) {
				t.Errorf("ci.yml test job runs %q on its own: scripts/test.sh sets the machine up, as the README says", ubuntu)
			}
		}
	}
	if !runs || !goVersion {
		t.Errorf("ci.yml test job: runs %q = %v, Go from setup-go = %v; want both", "bash "+command, runs, goVersion)
	}
	if bytes.Contains(data, []byte("flake-lock")) {
		t.Error("ci.yml still hands a flake.lock around as an artifact: Nix ignores an untracked lock in a git flake")
	}
}

// verify runs `release verify` (built from the repository copy) on a tag:
// the index, every platform image and their attestations must check out
// against the public key.
func verify(t *testing.T, repo, agent, prefix, pub, tag string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "release")
	build := exec.Command("go", "build", "-o", bin, "./cmd/release")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/release: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "verify", "--agent", agent, "--registry", prefix, "--insecure", "--key", pub, "--tag", tag)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("release verify --agent %s --tag %s: %v\n%s", agent, tag, err, out)
	}
}

// concurrencyConfig is a workflow's (or a job's) concurrency block.
type concurrencyConfig struct {
	Group            string `yaml:"group"`
	CancelInProgress any    `yaml:"cancel-in-progress"`
	Queue            string `yaml:"queue"`
}

// concurrencyGroup models one GitHub concurrency group as GitHub documents
// it: one running run, and pending runs up to the queue's size (1 for
// queue: single, the default; 100 for queue: max). A run that queues into a
// full queue cancels the oldest pending run with single, and is itself
// cancelled with max; cancel-in-progress: true cancels the running one.
type concurrencyGroup struct {
	cfg      concurrencyConfig
	running  string
	pending  []string
	canceled []string
}

func (g *concurrencyGroup) queue(run string) {
	if g.cfg.CancelInProgress == true && g.running != "" {
		g.canceled = append(g.canceled, g.running)
		g.running = ""
	}
	if g.running == "" {
		g.running = run
		return
	}
	size := 1
	if g.cfg.Queue == "max" {
		size = 100
	}
	if len(g.pending) < size {
		g.pending = append(g.pending, run)
		return
	}
	if size == 1 {
		g.canceled = append(g.canceled, g.pending[0])
		g.pending = []string{run}
		return
	}
	g.canceled = append(g.canceled, run)
}

func (g *concurrencyGroup) finish() {
	g.running = ""
	if len(g.pending) > 0 {
		g.running, g.pending = g.pending[0], g.pending[1:]
	}
}

// TestReleaseConcurrency holds release.yml's concurrency against GitHub's
// documented semantics: a v* release queued behind a running nightly must
// survive more runs queueing (with the default queue it was cancelled), and
// every run shares one group, so two runs never move tags at once.
func TestReleaseConcurrency(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Concurrency *concurrencyConfig `yaml:"concurrency"`
		Jobs        map[string]struct {
			Concurrency any `yaml:"concurrency"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Concurrency == nil {
		t.Fatal("release.yml has no workflow-level concurrency: two runs could move the same tags at once")
	}
	// One group for every event: a group built from the ref or the event
	// would let a tag release and a nightly run side by side.
	if strings.Contains(wf.Concurrency.Group, "${{") || wf.Concurrency.Group == "" {
		t.Errorf("concurrency group %q: want one constant group for every run", wf.Concurrency.Group)
	}
	if q := wf.Concurrency.Queue; q != "" && q != "single" && q != "max" {
		t.Errorf("concurrency queue %q: GitHub accepts single or max", q)
	}
	for name, job := range wf.Jobs {
		if job.Concurrency != nil {
			t.Errorf("job %s has its own concurrency group: it could be cancelled while pending", name)
		}
	}

	g := &concurrencyGroup{cfg: *wf.Concurrency}
	g.queue("nightly-1")
	g.queue("v1.0.0")
	g.queue("dispatch")
	g.queue("nightly-2")
	if slices.Contains(g.canceled, "v1.0.0") {
		t.Fatalf("a v* release queued behind a nightly is cancelled when two more runs queue (canceled %v): set queue: max", g.canceled)
	}
	var ran []string
	for g.running != "" {
		ran = append(ran, g.running)
		g.finish()
	}
	if want := []string{"nightly-1", "v1.0.0", "dispatch", "nightly-2"}; !slices.Equal(ran, want) || len(g.canceled) != 0 {
		t.Errorf("runs = %v, canceled %v; want %v one at a time, none canceled", ran, g.canceled, want)
	}
}

// TestSigningSecretsOnlyWhereTheySign: the cosign key and its password are
// in the environment of the one step that signs, never on a step that uses
// an action (every step inside it, third-party ones included, would inherit
// them), and inside action.yml only the step that runs release gets them.
func TestSigningSecretsOnlyWhereTheySign(t *testing.T) {
	root := testenv.RepoRoot(t)
	type step struct {
		ID   string            `yaml:"id"`
		Name string            `yaml:"name"`
		Uses string            `yaml:"uses"`
		Env  map[string]string `yaml:"env"`
		With map[string]string `yaml:"with"`
		Run  string            `yaml:"run"`
	}
	secretish := regexp.MustCompile(`secrets\.|COSIGN_PRIVATE_KEY|COSIGN_PASSWORD|inputs\.(private-key|key-password)`)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	// The template's workflow is copied into other repositories: it must
	// keep their secrets as close as ours.
	templates, _ := filepath.Glob(filepath.Join(root, "templates", "*", ".github", "workflows", "*.yml"))
	files = append(files, templates...)
	signing := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Env  map[string]string `yaml:"env"`
			Jobs map[string]struct {
				Env   map[string]string `yaml:"env"`
				Steps []step            `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(root, f)
		for k, v := range wf.Env {
			if secretish.MatchString(k + v) {
				t.Errorf("%s: workflow env %s=%s hands a secret to every job", rel, k, v)
			}
		}
		for name, job := range wf.Jobs {
			for k, v := range job.Env {
				if secretish.MatchString(k + v) {
					t.Errorf("%s: job %s env %s=%s hands a secret to every step", rel, name, k, v)
				}
			}
			for i, s := range job.Steps {
				if s.Uses == "" {
					continue
				}
				for k, v := range s.Env {
					if secretish.MatchString(k + v) {
						t.Errorf("%s: job %s step %d (uses %s) has %s=%s in its env, which every step inside the action sees", rel, name, i, s.Uses, k, v)
					}
				}
				if strings.Contains(s.With["private-key"], "secrets.COSIGN_PRIVATE_KEY") {
					signing++
				}
			}
		}
	}
	if signing == 0 {
		t.Error("no workflow passes secrets.COSIGN_PRIVATE_KEY to the Action's private-key input: the scan is broken")
	}

	data, err := os.ReadFile(filepath.Join(root, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Runs struct {
			Steps []step `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	var holders []string
	for i, s := range action.Runs.Steps {
		label := fmt.Sprintf("step %d (%s%s)", i, s.Name, s.Uses)
		for k, v := range s.With {
			if secretish.MatchString(v) {
				t.Errorf("action.yml: %s passes %s=%s to another action", label, k, v)
			}
		}
		for k, v := range s.Env {
			if secretish.MatchString(v) {
				holders = append(holders, s.ID)
				if s.Uses != "" || s.ID != "run" {
					t.Errorf("action.yml: %s gets %s=%s; only the step that runs release may", label, k, v)
				}
			}
		}
	}
	if len(holders) == 0 {
		t.Error("action.yml hands the signing inputs to no step: the scan is broken")
	}
}

// TestFlakePRScript runs .github/scripts/flake-pr.sh the way the workflows
// do, against a local origin and a recording gh: a first flake.lock (still
// untracked) is committed on the branch and proposed, a later change
// refreshes the same pull request, and no change does nothing.
func TestFlakePRScript(t *testing.T) {
	testenv.Require(t, "git")
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin.git")
	work := filepath.Join(dir, "work")
	bin := filepath.Join(dir, "bin")
	calls := filepath.Join(dir, "gh-calls")
	sh := func(d string, args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = d
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "GH_CALLS="+calls)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// gh records its arguments; "pr list" answers an open PR once one was created.
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeGH := `#!/bin/sh
echo "$*" >> "$GH_CALLS"
if [ "$1 $2" = "pr list" ] && grep -q "^pr create" "$GH_CALLS"; then echo 7; fi
`
	if err := os.WriteFile(filepath.Join(bin, "gh"), []byte(fakeGH), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(dir, "git", "init", "-q", "--bare", origin)
	sh(dir, "git", "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "flake.nix"), []byte("{ }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(work, "git", "add", "flake.nix")
	sh(work, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
	sh(work, "git", "remote", "add", "origin", origin)
	script := filepath.Join(root, ".github", "scripts", "flake-pr.sh")

	if err := os.WriteFile(filepath.Join(work, "flake.lock"), []byte(`{"version":7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(work, "bash", script, "update-flake/lock", "flake: add flake.lock", "first lock")
	if got := sh(dir, "git", "--git-dir", origin, "show", "update-flake/lock:flake.lock"); got != `{"version":7}` {
		t.Errorf("origin's update-flake/lock has flake.lock %q, want the new lock", got)
	}
	if got := sh(dir, "git", "--git-dir", origin, "log", "-1", "--format=%s", "update-flake/lock"); strings.TrimSpace(got) != "flake: add flake.lock" {
		t.Errorf("commit subject = %q, want the title", got)
	}

	if err := os.WriteFile(filepath.Join(work, "flake.lock"), []byte(`{"version":7,"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(work, "bash", script, "update-flake/lock", "flake: add flake.lock", "again")
	if out := sh(work, "bash", script, "update-flake/lock", "flake: add flake.lock", "unchanged"); !strings.Contains(out, "unchanged") {
		t.Errorf("flake-pr.sh with no change printed %q, want it to say flake.lock is unchanged", out)
	}
	data, _ := os.ReadFile(calls)
	var verbs []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		verbs = append(verbs, strings.Join(f[:min(2, len(f))], " "))
	}
	if want := "pr list|pr create|pr list|pr edit"; strings.Join(verbs, "|") != want {
		t.Errorf("gh calls = %q, want %s: create the pull request once, then refresh it", verbs, want)
	}
}
