package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

var update = flag.Bool("update", false, "regenerate docs/cli from the commands")

// cliDir is where the generated CLI reference lives, from the repository root.
const cliDir = "docs/cli"

// generateCLIReference writes the Markdown reference of every command into
// dir, as `release --help` shows it. The date line cobra adds by default
// would make every regeneration a change, so it is off.
func generateCLIReference(t *testing.T, dir string) {
	t.Helper()
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW_REF", "GITHUB_SERVER_URL", "GITHUB_API_URL", "GITHUB_OUTPUT"} {
		t.Setenv(k, "")
	}
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	var noDate func(*cobra.Command)
	noDate = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			noDate(sub)
		}
	}
	noDate(root)
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		t.Fatalf("generating the CLI reference: %v", err)
	}
}

// TestCLIReference fails when docs/cli is not what the commands generate:
// after changing a command or a flag, run
// `go test ./cmd/release -run TestCLIReference -update`.
func TestCLIReference(t *testing.T) {
	want := filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(cliDir))
	if *update {
		if err := os.RemoveAll(want); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(want, 0o755); err != nil {
			t.Fatal(err)
		}
		generateCLIReference(t, want)
		return
	}
	got := t.TempDir()
	generateCLIReference(t, got)
	gotFiles, wantFiles := markdownFiles(t, got), markdownFiles(t, want)
	if !slices.Equal(gotFiles, wantFiles) {
		t.Errorf("%s has %q, the commands generate %q: run go test ./cmd/release -run TestCLIReference -update", cliDir, wantFiles, gotFiles)
	}
	for _, name := range gotFiles {
		g, _ := os.ReadFile(filepath.Join(got, name))
		w, err := os.ReadFile(filepath.Join(want, name))
		if err == nil && !bytes.Equal(g, w) {
			t.Errorf("%s/%s differs from what the commands generate: run go test ./cmd/release -run TestCLIReference -update", cliDir, name)
		}
	}
}

func markdownFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	slices.Sort(names)
	return names
}

// docPages are README.md and every Markdown page under docs/, as paths
// from the repository root.
func docPages(t *testing.T) []string {
	t.Helper()
	root := testenv.RepoRoot(t)
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			pages = append(pages, filepath.ToSlash(rel))
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// codeBlock is one fenced block of a Markdown page.
type codeBlock struct {
	page string
	line int // of the opening fence, from 1
	lang string
	// marker is the HTML comment on the line right before the fence, if any.
	marker string
	body   string
}

var fence = regexp.MustCompile("^\\s*(`{3,}|~{3,})\\s*([^`\\s]*)")

// codeBlocks returns the fenced blocks of a Markdown text.
func codeBlocks(page, text string) []codeBlock {
	var blocks []codeBlock
	lines := strings.Split(text, "\n")
	var open *codeBlock
	var closer string
	var body []string
	for i, l := range lines {
		m := fence.FindStringSubmatch(l)
		switch {
		case open == nil && m != nil:
			open = &codeBlock{page: page, line: i + 1, lang: m[2]}
			closer, body = m[1], nil
			if i > 0 {
				if prev := strings.TrimSpace(lines[i-1]); strings.HasPrefix(prev, "<!--") && strings.HasSuffix(prev, "-->") {
					open.marker = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(prev, "<!--"), "-->"))
				}
			}
		case open != nil && m != nil && m[2] == "" && strings.TrimSpace(l) == strings.TrimSpace(m[1]) && strings.HasPrefix(m[1], closer):
			open.body = strings.Join(body, "\n")
			blocks = append(blocks, *open)
			open = nil
		case open != nil:
			body = append(body, l)
		}
	}
	return blocks
}

// shellLanguages are the blocks a reader may paste into a shell.
var shellLanguages = []string{"sh", "bash", "console", "shell"}

var (
	testedBy   = regexp.MustCompile(`tested by ([\w./-]+_test\.go) (Test\w+)`)
	notRunHere = regexp.MustCompile(`not run here: \S`)
)

// TestDocsShellBlocksAreRunOrMarked: every shell block of the README and
// docs/ is run by a test, named in the comment right before it as
// "tested by FILE TestName" (the file must hold that test and name the
// page it reads, unless it is TestDocsExamples), or says why it
// is not run here ("not run here: REASON", e.g. that it needs GitHub).
func TestDocsShellBlocksAreRunOrMarked(t *testing.T) {
	root := testenv.RepoRoot(t)
	n := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range codeBlocks(page, string(text)) {
			if !slices.Contains(shellLanguages, b.lang) {
				continue
			}
			n++
			if m := testedBy.FindStringSubmatch(b.marker); m != nil {
				src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m[1])))
				switch {
				case err != nil || !bytes.Contains(src, []byte("func "+m[2]+"(")):
					t.Errorf("%s:%d: the block is marked tested by %s %s, which that file does not hold", b.page, b.line, m[1], m[2])
				case m[2] != "TestDocsExamples" && !bytes.Contains(src, []byte(path.Base(b.page))):
					t.Errorf("%s:%d: the block is marked tested by %s %s, which never names %s", b.page, b.line, m[1], m[2], path.Base(b.page))
				}
				continue
			}
			if !notRunHere.MatchString(b.marker) {
				t.Errorf("%s:%d: a ```%s block with neither a test that runs it nor a reason it is not run: put <!-- tested by FILE_test.go TestName --> or <!-- not run here: why --> right before it", b.page, b.line, b.lang)
			}
		}
	}
	if n == 0 {
		t.Error("no shell block found in the README or docs/")
	}
}

// docsExamplesMarker marks the blocks TestDocsExamples runs.
const docsExamplesMarker = "tested by cmd/release/docs_test.go TestDocsExamples"

// TestDocsExamples runs every block marked for it, line by line, as a
// reader would from a clone of this repository: `release` in this process,
// in a fresh directory, with the stand-in inputs added to the commands that
// read the flake (these machines cannot fetch the real ones); `nix build`
// in the repository with $STANDIN_OVERRIDES as scripts/env.sh sets it.
func TestDocsExamples(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW_REF", "GITHUB_SERVER_URL", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		t.Setenv(k, "")
	}
	t.Setenv("COSIGN_PASSWORD", "docs-example")
	n := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range codeBlocks(page, string(text)) {
			if b.marker != docsExamplesMarker {
				continue
			}
			n++
			t.Run(fmt.Sprintf("%s:%d", page, b.line), func(t *testing.T) {
				dir := t.TempDir()
				t.Chdir(dir)
				for _, line := range strings.Split(b.body, "\n") {
					// A comment starts at " #" (".#pi" is a flake output).
					code, _, _ := strings.Cut(" "+line, " #")
					words := strings.Fields(code)
					if len(words) == 0 {
						continue
					}
					runDocsLine(t, root, words)
				}
			})
		}
	}
	if n == 0 {
		t.Errorf("no block is marked %q", docsExamplesMarker)
	}
}

// flakeCommands are the release commands that read the flake, which get
// the stand-in inputs.
var flakeCommands = []string{"matrix", "build"}

func runDocsLine(t *testing.T, root string, words []string) {
	t.Helper()
	line := strings.Join(words, " ")
	switch words[0] {
	case "release":
		args := words[1:]
		if len(args) > 0 && (slices.Contains(flakeCommands, args[0]) || strings.HasPrefix(args[0], "-")) && !slices.Contains(args, "--help") {
			testenv.Require(t, "nix")
			testenv.Setenv(t)
			args = append(args, standinArgs(t)...)
		}
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%s = %v\n%s", line, err, out)
		}
	case "nix":
		if testing.Short() {
			t.Skipf("%s: builds an image, skipped with -short", line)
		}
		testenv.Require(t, "nix")
		testenv.Setenv(t)
		// The build leaves a result link in the repository, as it would for
		// the reader; one that was not there before goes again.
		result := filepath.Join(root, "result")
		if _, err := os.Lstat(result); os.IsNotExist(err) {
			t.Cleanup(func() { os.Remove(result) })
		}
		cmd := exec.CommandContext(t.Context(), "bash", "-c", line)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "STANDIN_OVERRIDES="+strings.Join(testenv.OverrideArgs(t), " "))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s = %v\n%s", line, err, out)
		}
	default:
		t.Fatalf("%q: TestDocsExamples runs release and nix commands only; mark the block not run here, or teach the test", line)
	}
}

// mdLink is an inline Markdown link: its target, up to an optional title.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestDocsLinks: every relative link and #anchor between the README and
// the pages of docs/ resolves, by GitHub's rules for heading anchors, and
// no page is longer than a reader will scroll.
func TestDocsLinks(t *testing.T) {
	root := testenv.RepoRoot(t)
	pages := docPages(t)
	anchors := map[string]map[string]bool{}
	texts := map[string]string{}
	for _, page := range pages {
		text, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		texts[page] = string(text)
		anchors[page] = headingAnchors(string(text))
	}
	for _, page := range pages {
		limit := 400
		if page == "README.md" {
			limit = 300
		}
		if n := strings.Count(texts[page], "\n"); n > limit {
			t.Errorf("%s has %d lines, want at most %d: split it", page, n, limit)
		}
		for _, m := range mdLink.FindAllStringSubmatch(withoutCode(texts[page]), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.ToSlash(filepath.Join(filepath.Dir(page), file))
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
					t.Errorf("%s: link %s: no %s", page, target, dest)
					continue
				}
			}
			if frag == "" {
				continue
			}
			a, ok := anchors[dest]
			if !ok {
				t.Errorf("%s: link %s: an anchor into %s, which is not a page of the docs", page, target, dest)
				continue
			}
			if !a[frag] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", page, target, dest, frag)
			}
		}
	}
}

// withoutCode blanks fenced blocks and inline code, where a link is text.
func withoutCode(text string) string {
	lines := outsideFences(text)
	for i, l := range lines {
		lines[i] = inlineCode.ReplaceAllString(l, "``")
	}
	return strings.Join(lines, "\n")
}

// outsideFences is text's lines with those of fenced blocks, fences
// included, blanked.
func outsideFences(text string) []string {
	var out []string
	inFence := ""
	for _, l := range strings.Split(text, "\n") {
		if m := fence.FindStringSubmatch(l); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case m[2] == "" && strings.HasPrefix(m[1], inFence):
				inFence = ""
			}
			l = ""
		}
		if inFence != "" {
			l = ""
		}
		out = append(out, l)
	}
	return out
}

var (
	inlineCode  = regexp.MustCompile("`[^`]*`")
	heading     = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	anchorDrop  = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	linkInTitle = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// headingAnchors are the anchors GitHub gives a page's headings: lower
// case, punctuation dropped, spaces turned into '-', and -1, -2, ... after
// a repeated one.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, l := range outsideFences(text) {
		m := heading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := githubAnchor(m[1])
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

func githubAnchor(title string) string {
	title = linkInTitle.ReplaceAllString(title, "$1")
	title = strings.ToLower(strings.TrimSpace(title))
	return strings.ReplaceAll(anchorDrop.ReplaceAllString(title, ""), " ", "-")
}

// TestGitHubAnchor holds githubAnchor to anchors GitHub gives.
func TestGitHubAnchor(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Run", "run"},
		{"Custom images: `lib.mkAgentImage`", "custom-images-libmkagentimage"},
		{"release.json and the build record", "releasejson-and-the-build-record"},
		{"How this repository's nightly release works (`.github/workflows/release.yml`)", "how-this-repositorys-nightly-release-works-githubworkflowsreleaseyml"},
		{"Enforce signatures on pull: `release policy`", "enforce-signatures-on-pull-release-policy"},
		{"pi 0.70.6 → 99.0.0", "pi-0706--9900"},
		{"release_build", "release_build"},
	} {
		if got := githubAnchor(tc.in); got != tc.want {
			t.Errorf("githubAnchor(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestArchitectureDiagramIsTheImportGraph: docs/architecture.md's package
// diagram says an arrow is an import. Between the packages it draws, its
// arrows must be the imports go list sees, no more and no fewer, except
// that cmd/release's imports for its other commands are left out (the page
// says so), so only its drawn arrows must be real.
func TestArchitectureDiagramIsTheImportGraph(t *testing.T) {
	testenv.Require(t, "go")
	root := testenv.RepoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := codeBlocks("architecture.md", string(text))
	i := slices.IndexFunc(block, func(b codeBlock) bool { return b.lang == "mermaid" })
	if i < 0 {
		t.Fatal("docs/architecture.md has no mermaid block")
	}
	node := regexp.MustCompile(`^\s*(\w+)\["([^<"]+)`)
	arrow := regexp.MustCompile(`^\s*(\w+) --> (\w+)\s*$`)
	pkgs := map[string]string{}
	drawn := map[string]bool{}
	for _, line := range strings.Split(block[i].body, "\n") {
		if m := node.FindStringSubmatch(line); m != nil {
			pkgs[m[1]] = m[2]
		} else if m := arrow.FindStringSubmatch(line); m != nil {
			drawn[pkgs[m[1]]+" -> "+pkgs[m[2]]] = true
		}
	}
	out, err := exec.Command("go", "list", "-C", root, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/nothingnesses/agent-images/"
	shown := map[string]bool{}
	for _, p := range pkgs {
		shown[p] = true
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(fields[0], module)
		if !shown[from] {
			continue
		}
		for _, imp := range fields[1:] {
			to := strings.TrimPrefix(imp, module)
			if shown[to] && !drawn[from+" -> "+to] && from != "cmd/release" {
				t.Errorf("%s imports %s: docs/architecture.md draws no arrow for it", from, to)
			}
			delete(drawn, from+" -> "+to)
		}
	}
	for e := range drawn {
		t.Errorf("docs/architecture.md draws %s, which is no import", e)
	}
}
