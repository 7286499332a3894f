package doccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

var (
	// section is a cited section, "docs/architecture.md §5", with an optional named part
	// after it: `docs/architecture.md §5, "The client cap"`.
	section = regexp.MustCompile(`docs/([\w-]+)\.md §(\d+(?:\.\d+)*)(?:, "([^"]+)")?`)
	// named is a cited heading or bold paragraph without a section: `docs/operations.md,
	// "Drain mode"` (the docs/ may be left out), `README.md, "Add a job"`.
	named = regexp.MustCompile(`(?:docs/)?([\w-]+)\.md, "([^"]+)"`)
	// defect is a defect of the upstream broker, "upstream.md D10".
	defect = regexp.MustCompile(`upstream\.md,? (D\d+)`)
	// file is any docs/ file named.
	file = regexp.MustCompile(`docs/([\w-]+)\.md`)
	// outside is what points outside the repository.
	outside = regexp.MustCompile(`(?i:\bissues? #?\d+)|/work/shared|\bARCHITECTURE\b`)
)

// TestGoFilesCiteWhatExists reads every Go file of the repository, comments and strings
// alike, and names each citation of a docs/ file, section, heading or upstream defect that
// does not exist, and each § that does not say which docs/ file it is in.
func TestGoFilesCiteWhatExists(t *testing.T) {
	root := repoRoot(t)
	docs := map[string]string{}
	load := func(name string) (string, bool) {
		if text, ok := docs[name]; ok {
			return text, text != ""
		}
		path := filepath.Join(root, "docs", name+".md")
		if name == "README" {
			path = filepath.Join(root, "README.md")
		}
		raw, _ := os.ReadFile(path)
		docs[name] = string(raw)
		return docs[name], len(raw) > 0
	}
	walk(t, root, func(path, text string) {
		if !strings.HasSuffix(path, ".go") {
			return
		}
		for i, line := range strings.Split(text, "\n") {
			where := func(format string, args ...any) {
				t.Errorf("%s:%d: "+format, append([]any{path, i + 1}, args...)...)
			}
			for _, m := range file.FindAllStringSubmatch(line, -1) {
				if _, ok := load(m[1]); !ok {
					where("docs/%s.md does not exist", m[1])
				}
			}
			cited := section.FindAllStringSubmatch(line, -1)
			if n := strings.Count(line, "§"); n != len(cited) {
				where("a § without its docs/<file>.md before it: %q", strings.TrimSpace(line))
			}
			for _, m := range cited {
				if doc, ok := load(m[1]); ok && !hasSection(doc, m[2]) {
					where("docs/%s.md has no section §%s", m[1], m[2])
				}
				if doc, ok := load(m[1]); ok && m[3] != "" && !hasPart(doc, m[3]) {
					where("docs/%s.md has no heading or paragraph named %q", m[1], m[3])
				}
			}
			for _, m := range named.FindAllStringSubmatch(line, -1) {
				if doc, ok := load(m[1]); !ok {
					where("docs/%s.md does not exist", m[1])
				} else if !hasPart(doc, m[2]) {
					where("docs/%s.md has no heading or paragraph named %q", m[1], m[2])
				}
			}
			for _, m := range defect.FindAllStringSubmatch(line, -1) {
				if doc, _ := load("upstream"); !strings.Contains(doc, "\n| "+m[1]+" |") {
					where("docs/upstream.md has no defect %s", m[1])
				}
			}
		}
	})
}

// TestNothingPointsOutside: no file of the repository cites an issue by number, the shared
// brief or its ARCHITECTURE document; a reader has only the repository.
func TestNothingPointsOutside(t *testing.T) {
	walk(t, repoRoot(t), func(path, text string) {
		for i, line := range strings.Split(text, "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d: %q points outside the repository: %q", path, i+1, m, strings.TrimSpace(line))
			}
		}
	})
}

// hasSection reports whether doc has a heading numbered n ("## 5. Invariants", "### 4.7 …").
func hasSection(doc, n string) bool {
	return regexp.MustCompile(`(?m)^#{1,6} ` + regexp.QuoteMeta(n) + `[.\s]`).MatchString(doc)
}

// hasPart reports whether doc has a heading that starts with name, or a paragraph that
// starts with it in bold ("**The client cap.**").
func hasPart(doc, name string) bool {
	return regexp.MustCompile(`(?m)^(#{1,6} (\d+(\.\d+)*\.? )?` + regexp.QuoteMeta(name) + `|\*\*` + regexp.QuoteMeta(name) + `[.*])`).MatchString(doc)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// skipped are the folders that are not the repository's own text (tools, outputs and
// dependencies) and this one, whose patterns would match themselves.
var skipped = []string{".git", "node_modules", "bin", "cdk.out", "doccheck"}

// walk calls f with the path (relative to root) and text of every file of the repository
// but those in skipped folders and binary files.
func walk(t *testing.T, root string, f func(path, text string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if slices.Contains(skipped, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if slices.Contains(raw, 0) {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		f(rel, string(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// packageLink is a Markdown link whose text is a path in backquotes: [`pkg/csp`](…).
var packageLink = regexp.MustCompile("\\[`([\\w./-]+?)/?`\\]\\(([^)#]+)\\)")

// TestPackageLinksLandOnTheirDoc: in the README and docs/, a link named after a Go
// package's folder opens the file that holds the package's doc comment (its doc.go in a
// package of several files), where a reader of the package starts.
func TestPackageLinksLandOnTheirDoc(t *testing.T) {
	root := repoRoot(t)
	walk(t, root, func(path, text string) {
		if !strings.HasSuffix(path, ".md") {
			return
		}
		for _, m := range packageLink.FindAllStringSubmatch(text, -1) {
			doc := packageDoc(t, filepath.Join(root, m[1]))
			if doc == "" {
				continue // not a Go package's folder
			}
			target, _ := filepath.Rel(root, filepath.Join(root, filepath.Dir(path), m[2]))
			if want, _ := filepath.Rel(root, doc); target != want {
				t.Errorf("%s: the link to package %s opens %s; its doc is in %s", path, m[1], target, want)
			}
		}
	})
}

// packageDoc is the non-test Go file of dir that holds the package's doc comment ("//
// Package x" or "// Command x"), or "" when dir holds no Go package.
func packageDoc(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^// (Package|Command) `).Match(raw) {
			return f
		}
	}
	return ""
}
