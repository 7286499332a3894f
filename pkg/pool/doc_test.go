package pool_test

import (
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// parsePackage parses the package's non-test files with their comments.
func parsePackage(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	names, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".go") || strings.HasSuffix(n.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n.Name(), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

// unlinked is a [Name] or [Name.Name] left as text: a doc link that resolved to nothing.
var unlinked = regexp.MustCompile(`\[\*?[A-Za-z][\w/.-]*\]`)

// Every doc link in the package's documentation ([Pool.Claim], [pooltest.Check]) names
// something that exists: go/doc leaves a link it cannot resolve as text, and this test
// finds it there.
func TestDocLinksResolve(t *testing.T) {
	fset, files := parsePackage(t)
	pkg, err := doc.NewFromFiles(fset, files, "github.com/sandbox-broker/broker/pkg/pool", doc.PreserveAST)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{"package pool": pkg.Doc}
	add := func(name, text string) { docs[name] = text }
	for _, v := range append(slices.Clone(pkg.Consts), pkg.Vars...) {
		add(strings.Join(v.Names, ", "), v.Doc)
	}
	for _, f := range pkg.Funcs {
		add(f.Name, f.Doc)
	}
	for _, ty := range pkg.Types {
		add(ty.Name, ty.Doc)
		for _, v := range append(slices.Clone(ty.Consts), ty.Vars...) {
			add(strings.Join(v.Names, ", "), v.Doc)
		}
		for _, f := range append(slices.Clone(ty.Funcs), ty.Methods...) {
			add(ty.Name+"."+f.Name, f.Doc)
		}
	}
	parser := pkg.Parser()
	for name, text := range docs {
		for _, plain := range plainText(parser.Parse(text)) {
			for _, link := range unlinked.FindAllString(plain, -1) {
				t.Errorf("the doc of %s links %s, which names nothing", name, link)
			}
		}
	}
}

// plainText is the text of d's paragraphs, list items and headings, links left out.
func plainText(d *comment.Doc) []string {
	var out []string
	var texts func([]comment.Text)
	texts = func(ts []comment.Text) {
		for _, t := range ts {
			switch t := t.(type) {
			case comment.Plain:
				out = append(out, string(t))
			case comment.Italic:
				out = append(out, string(t))
			case *comment.Link:
				texts(t.Text)
			}
		}
	}
	var blocks func([]comment.Block)
	blocks = func(bs []comment.Block) {
		for _, b := range bs {
			switch b := b.(type) {
			case *comment.Paragraph:
				texts(b.Text)
			case *comment.Heading:
				texts(b.Text)
			case *comment.List:
				for _, item := range b.Items {
					blocks(item.Content)
				}
			}
		}
	}
	blocks(d.Content)
	return out
}

// The package doc's maps are true: every method a "Transitions" or "Queries" row names
// is a method of *Pool declared in that row's file; every item kind's Go type exists and
// its file holds it; and every exported method of *Pool is named in the package doc, so
// a new one is placed on the map.
func TestPackageDocMapsTheCode(t *testing.T) {
	fset, files := parsePackage(t)
	methodFile := map[string]string{} // method of *Pool → its file
	types := map[string]bool{}
	for _, f := range files {
		file := fset.Position(f.Package).Filename
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil && receiverName(d.Recv) == "Pool" {
					methodFile[d.Name.Name] = file
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						types[ts.Name.Name] = true
					}
				}
			}
		}
	}
	text := packageDoc(t, files)
	section := func(heading string) string { return docSection(t, text, heading) }
	for _, heading := range []string{"Transitions", "Queries"} {
		rows := fileRow.FindAllStringSubmatch(section(heading), -1)
		if len(rows) == 0 {
			t.Errorf("section %q maps no file", heading)
		}
		for _, r := range rows {
			file, names := r[1], r[2]
			if i := strings.IndexByte(names, '('); i >= 0 {
				names = names[:i]
			}
			for _, name := range strings.Split(names, ",") {
				name = strings.TrimSpace(name)
				switch got, ok := methodFile[name]; {
				case !ok:
					t.Errorf("%s: %s names %s, which is no method of *Pool", heading, file, name)
				case got != file:
					t.Errorf("%s: %s names %s, which is in %s", heading, file, name, got)
				}
			}
		}
	}
	item := regexp.MustCompile(`(?m)^\t(\S.*?) {2,}(\S+ / \S+) +(\w+)(?: +(\w+\.go))?`)
	rows := item.FindAllStringSubmatch(section("Items and keys"), -1)
	if len(rows) < 10 {
		t.Errorf("the item table has %d rows", len(rows))
	}
	for _, r := range rows[1:] { // the header is the first
		kind, goType, file := strings.TrimSpace(r[1]), r[3], r[4]
		if !types[goType] {
			t.Errorf("item %s: no type %s", kind, goType)
		}
		if file == "" {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(src), goType) {
			t.Errorf("item %s: %s does not hold %s (%v)", kind, file, goType, err)
		}
	}
	word := func(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `\b`) }
	for name := range methodFile {
		if token.IsExported(name) && !word(name).MatchString(text) {
			t.Errorf("the package doc does not name Pool.%s", name)
		}
	}
}

// fileRow is a row of the package doc's maps: a file and what it holds.
var fileRow = regexp.MustCompile(`(?m)^\t(\w+\.go) +(.+)$`)

// docSection is the text of the package doc's section under heading.
func docSection(t *testing.T, text, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(text, "# "+heading+"\n")
	if !ok {
		t.Fatalf("the package doc has no section %q", heading)
	}
	before, _, _ := strings.Cut(after, "\n# ")
	return before
}

// The README's code map names every file that holds transitions, as the package doc
// maps them, and only files that exist.
func TestReadmeNamesWhereTransitionsLive(t *testing.T) {
	_, files := parsePackage(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, row, ok := strings.Cut(string(readme), "| where are the state transitions? |")
	if !ok {
		t.Fatal(`the README's code map has no row "where are the state transitions?"`)
	}
	row, _, _ = strings.Cut(row, "\n")
	linked := map[string]bool{}
	for _, m := range regexp.MustCompile(`\(pkg/pool/(\w+\.go)\)`).FindAllStringSubmatch(row, -1) {
		linked[m[1]] = true
		if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("the README links pkg/pool/%s: %v", m[1], err)
		}
	}
	for _, r := range fileRow.FindAllStringSubmatch(docSection(t, packageDoc(t, files), "Transitions"), -1) {
		if !linked[r[1]] {
			t.Errorf("the README's row of state transitions does not name %s, which holds %s", r[1], r[2])
		}
	}
}

func receiverName(fl *ast.FieldList) string {
	switch x := fl.List[0].Type.(type) {
	case *ast.StarExpr:
		return x.X.(*ast.Ident).Name
	case *ast.Ident:
		return x.Name
	}
	return ""
}

func packageDoc(t *testing.T, files []*ast.File) string {
	for _, f := range files {
		if f.Doc != nil {
			return f.Doc.Text()
		}
	}
	t.Fatal("no package doc")
	return ""
}
