package smoke

import (
	"reflect"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
)

func TestImageExpect(t *testing.T) {
	defaults := flake.Image{
		MainProgram: "pi", Version: "0.70.2", User: "agent", UID: 1000, GID: 1000,
		Home: "/home/agent", WorkingDir: "/workspace", Entrypoint: []string{HomeShim, "pi"},
		Commands: []string{"git", "bash"}, ExtraEnv: map[string]string{},
	}
	tests := []struct {
		name string
		img  flake.Image
		want func() Expect
	}{
		{
			name: "default options",
			img:  defaults,
			want: func() Expect {
				e := AgentDefaults("pi")
				e.Commands = []string{"git", "bash"}
				e.Labels[labelVersion] = "0.70.2"
				return e
			},
		},
		{
			// A consumer's image: its own user, directories, program,
			// environment (overriding an XDG default) and toolbox, with Nix
			// and nix-ld.
			name: "custom options",
			img: flake.Image{
				MainProgram: "pi", Version: "1.0", User: "dev", UID: 1001, GID: 100,
				Home: "/home/dev", WorkingDir: "/src",
				Entrypoint:       []string{"reviewer", "--quiet"},
				ExtraDirectories: []string{"/home/dev/.cache/reviewer", "/opt/reviewer"},
				ExtraEnv: map[string]string{
					"XDG_CONFIG_HOME": "/home/dev/.reviewer",
					"REVIEWER_MODE":   "strict",
					"not-a-shell-var": "x",
				},
				Commands:  []string{"hello", "bash", "has space"},
				Labels:    map[string]string{"org.opencontainers.image.vendor": "Acme", labelVersion: "1.0"},
				WithNix:   true,
				WithNixLd: true,
			},
			want: func() Expect {
				e := UserDefaults("pi", "dev", 1001, 100, "/home/dev", "/src")
				e.Entrypoint = []string{"reviewer", "--quiet"}
				e.Commands = []string{"hello", "bash"}
				e.Env["XDG_CONFIG_HOME"] = "/home/dev/.reviewer"
				e.Env["REVIEWER_MODE"] = "strict"
				e.UniqueEnv = append(e.UniqueEnv, "REVIEWER_MODE")
				e.Dirs = append(e.Dirs, "/home/dev/.cache/reviewer", "/opt/reviewer")
				e.Labels[labelVersion] = "1.0"
				e.Labels["org.opencontainers.image.vendor"] = "Acme"
				e.Absent = []string{}
				e.Nix = &NixExpect{}
				e.NixLd = &NixLdExpect{}
				return e
			},
		},
		{
			// Metadata of an older mkAgentImage: no entrypoint, commands or
			// extraEnv, so the defaults stand.
			name: "older metadata",
			img: flake.Image{
				MainProgram: "codex", Version: "2", User: "agent", UID: 1000, GID: 1000,
				Home: "/home/agent", WorkingDir: "/workspace",
			},
			want: func() Expect {
				e := AgentDefaults("codex")
				e.Labels[labelVersion] = "2"
				return e
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExpectOf(tt.img)
			want := tt.want()
			if !got.NonRoot {
				t.Errorf("Expect().NonRoot = false, want true: a release image never runs as root")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Expect() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// Expect must not alias the metadata: the smoke stage may run several
// targets of one image description at once.
func TestImageExpectCopies(t *testing.T) {
	img := flake.Image{User: "agent", UID: 1000, GID: 1000, Home: "/home/agent", WorkingDir: "/workspace",
		MainProgram: "pi", Entrypoint: []string{"pi"}, Commands: []string{"git"}}
	e := ExpectOf(img)
	e.Entrypoint[0] = "changed"
	e.Commands[0] = "changed"
	if img.Entrypoint[0] != "pi" || img.Commands[0] != "git" {
		t.Errorf("changing Expect() changed the image metadata: %q %q", img.Entrypoint, img.Commands)
	}
}
