package main

import (
	"strings"
	"testing"
)

// TestSBOMFormatFlag: every command that signs takes --sbom-format, and an
// unknown format is refused by name before anything is built (the flake is
// an empty directory, so getting further would fail differently).
func TestSBOMFormatFlag(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	for _, cmd := range [][]string{nil, {"build"}, {"merge"}} {
		for _, tt := range []struct {
			formats []string
			want    string
		}{
			{[]string{"--sbom-format", "cyclonedx,swid"}, `--sbom-format: unknown SBOM format "swid": use cyclonedx, spdx, or both`},
			{[]string{"--sbom-format", "spdx", "--sbom-format", "xml"}, `unknown SBOM format "xml"`},
			{[]string{"--sbom-format", ""}, `--sbom-format: no SBOM format given`},
		} {
			args := append(append(append([]string{}, cmd...), "--agent", "pi", "--push", "--registry", "localhost:5000/x",
				"--flake", t.TempDir(), "--key", "cosign.key"), tt.formats...)
			if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("release %s = %v, want an error containing %q", strings.Join(args, " "), err, tt.want)
			}
		}
	}
	out, err := run(t, "--help")
	if err != nil || !strings.Contains(out, `--sbom-format strings`) || !strings.Contains(out, `(default [cyclonedx,spdx])`) {
		t.Errorf("release --help = %v\n%s\nwant --sbom-format with both formats as the default", err, out)
	}
}
