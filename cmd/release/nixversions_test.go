package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestReleaseOnEveryNix releases two agents for both systems with every nix
// of the test bed, in one job and split into a build job per system and a
// merge, and has the cosign CLI verify each index. On Nix 2.15 and later a
// build that names a derivation by its bare .drv path builds nothing, which
// failed every build before release asked for its out output.
//
// A merge whose inputs are locked differently from its build jobs' (here: an
// llm-agents with one more file, whose derivations are the same) is refused
// for that reason, by name, before anything is written.
func TestReleaseOnEveryNix(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pi and codex: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	outsideActions(t)
	cosignBin := testenv.CosignCLI(t, "v2.6.5")
	for _, n := range testenv.Nixes(t) {
		t.Run(n.Name, func(t *testing.T) {
			n.Use(t)
			host := testenv.StartRegistry(t)
			dir := t.TempDir()
			const password = "every-nix"
			key, pub := writeKeyPair(t, dir, password)
			t.Setenv("COSIGN_PASSWORD", password)
			const agents = "pi,codex"
			common := func(prefix string) []string {
				return []string{"--agent", agents, "--registry", prefix, "--insecure", "--runtime", "none", "--key", key,
					"--commit", "2626262626262626262626262626262626262626", "--work-dir", filepath.Join(dir, "work")}
			}
			verify := func(prefix string) {
				t.Helper()
				for _, agent := range strings.Split(agents, ",") {
					ref := prefix + "/" + agent + ":latest"
					if out, err := testenv.Cosign(t, cosignBin, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref); err != nil {
						t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
					}
				}
			}

			single := host + "/single"
			if out, err := run(t, append(append([]string{"--push", "--output", filepath.Join(dir, "single.json")}, common(single)...), standinArgs(t)...)...); err != nil {
				t.Fatalf("release --agent %s --push = %v\n%s", agents, err, out)
			}
			rep, err := record.ReadReport(filepath.Join(dir, "single.json"))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range rep.Agents {
				if a.Status != record.StageDone || len(a.Platforms) != 2 {
					t.Errorf("%s: %s with %d platforms (%s), want done for both systems", a.Agent, a.Status, len(a.Platforms), a.Error)
				}
			}
			verify(single)

			split := host + "/split"
			records := filepath.Join(dir, "records")
			if err := os.Mkdir(records, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
				out := filepath.Join(records, "build-"+sys+".json")
				if _, err := run(t, append(append([]string{"build", "--push", "--system", sys, "--output", out}, common(split)...), standinArgs(t)...)...); err != nil {
					t.Fatalf("release build --system %s = %v", sys, err)
				}
				b, err := record.ReadBuilds(out)
				if err != nil {
					t.Fatal(err)
				}
				if in := b[0].Inputs["llm-agents"]; in.NarHash == "" {
					t.Errorf("build record of %s names no lock for llm-agents: %+v", sys, b[0].Inputs)
				}
			}

			// The same merge with a changed llm-agents is refused, naming it.
			changed := filepath.Join(t.TempDir(), "llm-agents")
			if out, err := exec.Command("cp", "-r", filepath.Join(testenv.RepoRoot(t), "testdata", "standin", "llm-agents"), changed).CombinedOutput(); err != nil {
				t.Fatalf("copying the stand-in: %v\n%s", err, out)
			}
			writeFile(t, filepath.Join(changed, "CHANGED"), "an input that moved between the build jobs and the merge\n")
			overrides := testenv.StandinOverrides(t)
			overrides["llm-agents"] = "path:" + changed
			var changedArgs []string
			for name, ref := range overrides {
				changedArgs = append(changedArgs, "--override-input", name+"="+ref)
			}
			changedArgs = append(changedArgs, "--flake", testenv.RepoRoot(t))
			refused := filepath.Join(dir, "refused.json")
			if _, err = run(t, append(append([]string{"merge", "--from", records, "--output", refused}, common(split)...), changedArgs...)...); err == nil {
				t.Errorf("merge with another llm-agents succeeded, want it refused")
			}
			rep, err = record.ReadReport(refused)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range rep.Agents {
				if !strings.Contains(a.Error, "built from other inputs than this merge evaluates (input llm-agents was ") ||
					!strings.Contains(a.Error, "same committed flake.lock") {
					t.Errorf("merge of %s with another llm-agents: %s, want it refused for the input llm-agents", a.Agent, a.Error)
				}
			}
			if tagExists(t, split+"/pi:latest") {
				t.Fatalf("the refused merge moved latest")
			}

			if out, err := run(t, append(append([]string{"merge", "--from", records, "--output", filepath.Join(dir, "merged.json")}, common(split)...), standinArgs(t)...)...); err != nil {
				t.Fatalf("release merge = %v\n%s", err, out)
			}
			verify(split)
		})
	}
}

// tagExists reports whether the registry has ref.
func tagExists(t *testing.T, ref string) bool {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, remote.WithContext(t.Context()))
	return err == nil
}
