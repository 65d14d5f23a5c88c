package smoke

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// entry is one file of a test image.
type entry struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	data     []byte
}

// tree is a test image's filesystem by absolute path, edited by each test
// case before it becomes an image.
type tree map[string]entry

func (tr tree) dir(p string, uid, gid int, mode int64) {
	tr[p] = entry{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}
func (tr tree) file(p string, mode int64, data string) {
	tr[p] = entry{typ: tar.TypeReg, mode: mode, data: []byte(data)}
}
func (tr tree) symlink(p, target string) {
	tr[p] = entry{typ: tar.TypeSymlink, mode: 0o777, link: target}
}

const (
	storeBusybox = "/nix/store/0000000000000000000000000000bbox-busybox-1.35.0"
	storeAgent   = "/nix/store/00000000000000000000000000agent-fake-agent-1.2.3"
	storeTools   = "/nix/store/00000000000000000000000000tools-fake-tools"
	storeShim    = "/nix/store/000000000000000000000000000shim-agent-images-entrypoint"
)

// busyboxApplets are the busybox programs the test images link into /bin.
var busyboxApplets = []string{
	"sh", "ls", "whoami", "id", "stat", "rm", "cat", "grep", "find", "sed", "awk", "diff", "tar", "gzip",
	"less", "which", "readlink", "true", "env", "head", "touch",
}

var gooArch = map[string]string{"amd64": "x86_64-linux", "arm64": "aarch64-linux"}

// busybox is the static busybox for a GOARCH, from scripts/setup-host.sh.
func busybox(t testing.TB, arch string) []byte {
	t.Helper()
	p := path.Join("/opt/agent-images-standin", gooArch[arch], "busybox")
	b, err := os.ReadFile(p)
	if err != nil {
		msg := "static busybox missing (run scripts/setup-host.sh): " + err.Error()
		if testenv.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return b
}

// agentTree is a filesystem that passes AgentDefaults("fake-agent"): busybox
// in a store path linked into /bin, scripts standing in for git, rg and the
// agent, the agent user and every directory it must own.
func agentTree(t testing.TB, arch string) tree {
	tr := tree{}
	tr.dir("/nix", 0, 0, 0o755)
	tr.dir("/nix/store", 0, 0, 0o755)
	tr.dir(storeBusybox+"/bin", 0, 0, 0o555)
	tr[storeBusybox+"/bin/busybox"] = entry{typ: tar.TypeReg, mode: 0o555, data: busybox(t, arch)}
	tr.dir("/bin", 0, 0, 0o755)
	for _, a := range busyboxApplets {
		tr.symlink("/bin/"+a, storeBusybox+"/bin/busybox")
	}
	tr.dir(storeAgent+"/bin", 0, 0, 0o555)
	tr.file(storeAgent+"/bin/fake-agent", 0o555, "#!/bin/sh\necho fake-agent 1.2.3\n")
	tr.symlink("/bin/fake-agent", "../"+strings.TrimPrefix(storeAgent, "/")+"/bin/fake-agent")
	// The home shim, reduced to what it does for the image's own user.
	tr.dir(storeShim+"/bin", 0, 0, 0o555)
	tr.file(storeShim+"/bin/"+HomeShim, 0o555, "#!/bin/sh\nexec \"$@\"\n")
	tr.symlink("/bin/"+HomeShim, storeShim+"/bin/"+HomeShim)
	tr.dir(storeTools+"/bin", 0, 0, 0o555)
	for _, c := range []string{"git", "rg", "bash", "jq", "curl"} {
		tr.file(storeTools+"/bin/"+c, 0o555, "#!/bin/sh\necho "+c+"\n")
		tr.symlink("/bin/"+c, storeTools+"/bin/"+c)
	}
	tr.dir("/etc", 0, 0, 0o755)
	tr.file("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n")
	tr.file("/etc/group", 0o644, "root:x:0:\nagent:x:1000:\n")
	tr.dir("/etc/ssl/certs", 0, 0, 0o755)
	tr.file("/etc/ssl/certs/ca-bundle.crt", 0o444, "-----BEGIN CERTIFICATE-----\n")
	tr.dir("/tmp", 0, 0, 0o1777)
	tr.dir("/home", 0, 0, 0o755)
	for _, d := range []string{"/home/agent", "/home/agent/.config", "/home/agent/.cache", "/home/agent/.local",
		"/home/agent/.local/share", "/home/agent/.local/state", "/workspace"} {
		tr.dir(d, 1000, 1000, 0o755)
	}
	return tr
}

func agentConfig(arch string) v1.ConfigFile {
	return v1.ConfigFile{
		OS:           "linux",
		Architecture: arch,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       "agent",
			WorkingDir: "/workspace",
			Entrypoint: []string{HomeShim, "fake-agent"},
			Env: []string{
				"PATH=/bin",
				"HOME=/home/agent",
				"USER=agent",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt",
				"XDG_CONFIG_HOME=/home/agent/.config",
				"XDG_CACHE_HOME=/home/agent/.cache",
				"XDG_DATA_HOME=/home/agent/.local/share",
				"XDG_STATE_HOME=/home/agent/.local/state",
			},
			Labels: map[string]string{
				"org.opencontainers.image.title":    "fake-agent",
				"org.opencontainers.image.version":  "1.2.3",
				"org.opencontainers.image.licenses": "MIT",
			},
		},
	}
}

// image turns a tree and a config into a one-layer image, entries sorted so
// parents come first.
func image(t testing.TB, tr tree, cf v1.ConfigFile) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := tr[p]
		h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, Size: int64(len(e.data)), Format: tar.FormatPAX}
		if e.typ == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	base, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.RootFS = base.RootFS
	img, err = mutate.ConfigFile(img, &cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checks returns the names of results with the given status, sorted.
func checks(rs []Result, s Status) []string {
	var out []string
	for _, r := range rs {
		if r.Status == s {
			out = append(out, r.Check)
		}
	}
	slices.Sort(out)
	return out
}
