package flake

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWritePythonIsJSONDumps writes configs with what Python escapes or
// lays out its own way, and compares with json.dumps(indent=4).
func TestWritePythonIsJSONDumps(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	for _, in := range []string{
		`{"Env":["A=1","PATH=/bin"],"Labels":{"é":"naïve ✓ 🎉","q":"\"\\/\n\t\r\b\f\u0001\u007f"},"Empty":{},"None":[],"N":-12,"T":true,"F":false,"Z":null}`,
		`{"b":1,"a":{"d":[{"x":[]}],"c":0}}`,
		`{"h":"<a&b>\u2028","big":123456789012345678901234567890,"e":[true,false,-7]}`,
		`{}`,
	} {
		got, err := pythonJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want, err := exec.Command("python3", "-c", "import json, sys; sys.stdout.write(json.dumps(json.loads(sys.argv[1]), indent=4))", in).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("pythonJSON(%s) =\n%s\nwant\n%s", in, got, want)
		}
	}
	for _, in := range []string{`{"a":1.5}`, `{"a":[true,1e5]}`, `{"a":-2E1}`} {
		if _, err := pythonJSON([]byte(in)); !errors.Is(err, errNotPackable) {
			t.Errorf("pythonJSON(%s) = %v, want errNotPackable (Python prints floats its own way)", in, err)
		}
	}
}

// TestReadConfRefusesWhatItCannotReproduce: a conf.json whose image the
// packer would not make byte for byte is errNotPackable, so Build falls
// back to the image Nix builds.
func TestReadConfRefusesWhatItCannotReproduce(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"architecture": "amd64", "config": map[string]any{}, "created": "1970-01-01T00:00:01+00:00",
			"mtime": "1970-01-01T00:00:01Z", "uid": "0", "gid": 0, "uname": "root", "gname": "root",
			"store_dir": "/nix/store", "from_image": nil, "store_layers": [][]string{{"/nix/store/a-x"}},
			"customisation_layer": "/nix/store/c-layer",
		}
	}
	for _, tc := range []struct {
		name  string
		set   map[string]any
		valid bool
	}{
		{"as nixpkgs writes it", nil, true},
		{"a base image", map[string]any{"from_image": "/nix/store/b-base.tar"}, false},
		{"created now", map[string]any{"created": "now"}, false},
		{"an mtime without a zone", map[string]any{"mtime": "1970-01-01T00:00:01"}, false},
		{"a path outside the store", map[string]any{"store_layers": [][]string{{"/tmp/x"}}}, false},
		{"no customisation layer", map[string]any{"customisation_layer": ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			for k, v := range tc.set {
				c[k] = v
			}
			data, _ := json.Marshal(c)
			path := filepath.Join(t.TempDir(), "conf.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, own, err := readConf(path)
			switch {
			case tc.valid && (err != nil || own != owner{Uname: "root", Gname: "root", Mtime: 1}):
				t.Errorf("readConf = %+v, %v, want root at mtime 1", own, err)
			case !tc.valid && !errors.Is(err, errNotPackable):
				t.Errorf("readConf = %v, want errNotPackable", err)
			}
		})
	}
}

// TestBuildFallsBackToTheNixImage: an image whose conf.json asks for what
// the packer does not reproduce is built by Nix and read from its archive.
func TestBuildFallsBackToTheNixImage(t *testing.T) {
	amd64 := dockerArchive(t, "amd64")
	conf := filepath.Join(t.TempDir(), "conf.json")
	if err := os.WriteFile(conf, []byte(`{"from_image": "/nix/store/b-base.tar"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var realised []string
	fake := func(_ context.Context, args ...string) ([]byte, error) {
		if args[0] == "--version" {
			return []byte("nix (Nix) 2.26.3\n"), nil
		}
		drv := strings.TrimSuffix(args[len(args)-1], "^out")
		realised = append(realised, drv)
		out := amd64
		if strings.HasSuffix(drv, "-conf.json.drv") {
			out = conf
		}
		return json.Marshal([]map[string]any{{"drvPath": drv, "outputs": map[string]string{"out": out}}})
	}
	tg := Target{Agent: "pi", System: X86_64Linux, Image: Image{DrvPath: drvOf("pi", X86_64Linux), ConfDrvPath: "/nix/store/00000000000000000000000000000000-pi-conf.json.drv"}}
	r := buildAll(t, []Target{tg}, withNix(fake), WithWorkDir(t.TempDir()))[0]
	if r.err != nil || r.built.OutPath != amd64 {
		t.Fatalf("Build = %+v, %v; want the image from %s", r.built, r.err, amd64)
	}
	if want := []string{tg.Image.ConfDrvPath, tg.Image.DrvPath}; strings.Join(realised, " ") != strings.Join(want, " ") {
		t.Errorf("realised %q, want the conf, then the image: %q", realised, want)
	}
}
