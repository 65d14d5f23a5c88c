package smoke

import (
	"maps"
	"slices"

	"github.com/nothingnesses/agent-images/flake"
)

// labelVersion is the OCI label mkAgentImage sets to the agent's version.
const labelVersion = "org.opencontainers.image.version"

// ExpectOf is what the smoke test holds a release image to: what the flake
// declared about this very image (user, home, working directory,
// directories, program, environment, toolbox, Nix and nix-ld), and never
// root. It reads nothing but the metadata, so any flake's mkAgentImage
// images are checked against their own options, not against our defaults.
func ExpectOf(img flake.Image) Expect {
	e := UserDefaults(img.MainProgram, img.User, img.UID, img.GID, img.Home, img.WorkingDir)
	if len(img.Entrypoint) > 0 {
		e.Entrypoint = slices.Clone(img.Entrypoint)
	}
	// Metadata without commands comes from an older mkAgentImage, whose
	// toolbox was the default one.
	if img.Commands != nil {
		e.Commands = nil
		for _, c := range img.Commands {
			if commandName.MatchString(c) {
				e.Commands = append(e.Commands, c)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(img.ExtraEnv)) {
		if !envKey.MatchString(k) {
			continue // in the config, but no shell can read it back
		}
		e.Env[k] = img.ExtraEnv[k]
		if !slices.Contains(e.UniqueEnv, k) {
			e.UniqueEnv = append(e.UniqueEnv, k)
		}
	}
	e.Dirs = append(e.Dirs, img.ExtraDirectories...)
	e.Labels[labelVersion] = img.Version
	// The config carries exactly the labels the flake declared.
	maps.Copy(e.Labels, img.Labels)
	if img.WithNix {
		e.Absent = slices.DeleteFunc(e.Absent, func(c string) bool { return c == "nix" })
		e.Nix = &NixExpect{}
	}
	if img.WithNixLd {
		e.NixLd = &NixLdExpect{}
	}
	return e
}
