package changes

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/nothingnesses/agent-images/record"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./changes -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./changes -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// goldenReport is a release of pi that changed in every way a report shows
// (render reads its JSON, testdata/report.golden.json, as its fixture):
// version, sizes (one over the threshold), store paths, an input, and a
// note about an earlier release without an SBOM on one platform.
func goldenReport(t *testing.T) *record.Changes {
	t.Helper()
	bash := sp(h1, "bash-interactive", "5.2p37")
	before := testRelease(t, "a", "0.70.6", 1_300_017, 1_247_835, []record.StorePath{bash, sp(h2, "pi", "0.70.6")},
		map[string]record.Pin{"nixpkgs": {Rev: strings.Repeat("1", 40)}, "llm-agents": {Rev: strings.Repeat("2", 40), NarHash: "sha256-llmA="}})
	before.Images[1].sbom = nil
	before.Tag = "2026-05-01"
	after := testRelease(t, "d", "0.71.0", 1_564_891, 1_250_000, []record.StorePath{sp(h4, "agent-assets", "1.0"), bash, sp(h3, "pi", "0.71.0")},
		map[string]record.Pin{"nixpkgs": {Rev: strings.Repeat("1", 40)}, "llm-agents": {Rev: strings.Repeat("3", 40), NarHash: "sha256-llmB="}})
	after.Tag = "latest"
	return compare(before, after, true, ptr(0.10))
}

func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(goldenReport(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.json", append(b, '\n'))

	var back record.Changes
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the JSON does not read back: %v", err)
	}
	if back.To.Version != "0.71.0" || len(back.Platforms) != 2 || !back.Platforms[0].OverThreshold || *back.SizeThreshold != 0.10 {
		t.Errorf("read back = %+v, want what was written", back)
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 264_874: "258.7 KiB", 1_564_891: "1.5 MiB", 3 << 30: "3.0 GiB"} {
		if got := record.HumanBytes(in); got != want {
			t.Errorf("record.HumanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
