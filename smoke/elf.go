package smoke

import (
	"bytes"
	"debug/elf"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// foreignCandidate is a program every image is likely to have that exits 0
// with args, and the file it resolves to in the image.
type foreignCandidate struct {
	name string // base name, kept so multi-call binaries still know what to be
	args []string
	file string
}

// foreignELF is a candidate with its ELF interpreter (old) rewritten to the
// conventional loader path, the way a binary built for another distribution
// looks. Running it proves nix-ld finds the real loader and the libraries;
// it needs real nix-ld, so stand-ins skip it.
type foreignELF struct {
	foreignCandidate
	data []byte
	old  string
}

var foreignCandidates = []foreignCandidate{
	{"true", nil, ""},
	{"ls", []string{"/"}, ""},
	{"env", nil, ""},
	{"cat", []string{"/dev/null"}, ""},
	{"sh", []string{"-c", "true"}, ""},
}

var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// patchInterpreter rewrites the PT_INTERP string of an ELF executable for
// machine (0: any) in place. The new path must fit in the old one's space,
// which holds for a /nix/store loader replaced by a conventional /lib path.
func patchInterpreter(b []byte, interp string, machine elf.Machine) (patched []byte, old string, err error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("not ELF: %w", err)
	}
	defer f.Close()
	if machine != 0 && f.Machine != machine {
		return nil, "", fmt.Errorf("built for %s", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		if p.Off+p.Filesz > uint64(len(b)) {
			return nil, "", fmt.Errorf("PT_INTERP outside the file")
		}
		old = strings.TrimRight(string(b[p.Off:p.Off+p.Filesz]), "\x00")
		if uint64(len(interp)+1) > p.Filesz {
			return nil, old, fmt.Errorf("interpreter %q does not fit in %d bytes", interp, p.Filesz)
		}
		out := slices.Clone(b)
		region := out[p.Off : p.Off+p.Filesz]
		clear(region)
		copy(region, interp)
		return out, old, nil
	}
	return nil, "", fmt.Errorf("statically linked (no PT_INTERP)")
}

// foreignCandidateFiles are the candidates the image has, with the files
// they resolve to.
func foreignCandidateFiles(f *imageFS, pathEnv string) []foreignCandidate {
	var cands []foreignCandidate
	for _, c := range foreignCandidates {
		if _, info, ok := f.lookPath(c.name, pathEnv); ok {
			c.file = info.Path
			cands = append(cands, c)
		}
	}
	return cands
}

// findForeignELF picks a dynamically linked program of the image's
// architecture among cands and returns it patched to use loader; the string
// says why none could be used.
func findForeignELF(f *imageFS, cands []foreignCandidate, loader string, plat v1.Platform) (*foreignELF, string) {
	if len(cands) == 0 {
		return nil, "none of true, ls, env, cat, sh is on PATH"
	}
	var files []string
	for _, c := range cands {
		files = append(files, c.file)
	}
	if err := f.readFiles(files...); err != nil {
		return nil, err.Error()
	}
	var why []string
	for _, c := range cands {
		patched, old, err := patchInterpreter(f.contents[c.file], loader, elfMachines[plat.Architecture])
		if err == nil {
			return &foreignELF{c, patched, old}, ""
		}
		why = append(why, fmt.Sprintf("%s: %v", c.file, err))
	}
	return nil, "no dynamically linked program to run through the loader: " + strings.Join(why, "; ")
}
