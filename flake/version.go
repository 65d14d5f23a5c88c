package flake

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Version is the version of the Nix language and command line that a nix
// binary implements, as `nix --version` prints it. It is the one place that
// knows how Nix versions differ in what release asks of them; everything
// else asks a Version.
//
// Supported: Nix 2.8 and later (Debian bookworm's 2.8 is the oldest tested,
// Debian trixie's 2.26 the current one), Determinate Nix, and Lix, whose
// 2.9x command line is that of Nix 2.18.
type Version struct {
	Major, Minor, Patch int
	// Variant is "Nix", "Determinate Nix" or "Lix", for messages.
	Variant string
}

// Oldest is the oldest Nix release builds and evaluates with.
var Oldest = Version{Major: 2, Minor: 8, Variant: "Nix"}

func (v Version) String() string {
	return fmt.Sprintf("%s %d.%d.%d", v.Variant, v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// versionLine matches what `nix --version` prints:
//
//	nix (Nix) 2.26.3
//	nix (Determinate Nix 3.6.2) 2.29.0
//	nix (Lix, like Nix) 2.91.1
var versionLine = regexp.MustCompile(`^nix \(([^)]*)\) (\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads the first line `nix --version` printed.
func ParseVersion(out string) (Version, error) {
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("nix --version printed %q, want \"nix (Nix) 2.x.y\"", firstLine(out))
	}
	v := Version{Variant: "Nix"}
	v.Major, _ = strconv.Atoi(m[2])
	v.Minor, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.Patch, _ = strconv.Atoi(m[4])
	}
	switch {
	case strings.HasPrefix(m[1], "Lix"):
		v.Variant = "Lix"
	case strings.HasPrefix(m[1], "Determinate"):
		v.Variant = "Determinate Nix"
	}
	if !v.AtLeast(Oldest.Major, Oldest.Minor) {
		return v, fmt.Errorf("%s is older than %s, the oldest release builds with: upgrade Nix", v, Oldest)
	}
	return v, nil
}

// DetectVersion runs `nix --version`.
func DetectVersion(ctx context.Context, run Runner) (Version, error) {
	out, err := run(ctx, "--version")
	if err != nil {
		return Version{}, fmt.Errorf("asking nix for its version: %w", err)
	}
	return ParseVersion(string(out))
}

// OutInstallable is the installable that names the out output of a store
// derivation. A bare .drv path named the derivation's outputs until Nix 2.15
// and names the derivation file itself since, so nothing is built; DRV^out,
// understood since Nix 2.13, names the output. Before 2.13 the bare path is
// the spelling every release understands (2.8 takes neither ^ nor !).
func (v Version) OutInstallable(drvPath string) string {
	if v.AtLeast(2, 13) {
		return drvPath + "^out"
	}
	return drvPath
}

// Realise builds the out output of each store derivation in one nix
// process, with out-links at link, link-1, ... (Nix 2.8 numbers them in its
// own order), and returns each one's store path by derivation. `nix build
// --json` prints an entry per installable, the same shape from 2.8 on.
func Realise(ctx context.Context, run Runner, v Version, link string, drvPaths ...string) (map[string]string, error) {
	args := []string{"build", "--json", "--out-link", link}
	for _, d := range drvPaths {
		args = append(args, v.OutInstallable(d))
	}
	out, err := run(ctx, args...)
	if err != nil {
		return nil, err
	}
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil {
		return nil, fmt.Errorf("nix build --json printed %q, want a list of derivations and their outputs: %w", firstLine(string(out)), err)
	}
	outs := map[string]string{}
	for _, b := range built {
		outs[b.DrvPath] = b.Outputs["out"]
	}
	if i := slices.IndexFunc(drvPaths, func(d string) bool { return outs[d] == "" }); i >= 0 {
		return nil, fmt.Errorf("nix build --json printed %q, want %s with an out output", out, drvPaths[i])
	}
	return outs, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
