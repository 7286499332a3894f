package testkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Methods lists the methods declared in the non-test Go files of dir on the pointer
// receiver *recv whose parameter and result types read as params and results, e.g.
// "context.Context, *request" and "reply, error". A table test uses it to find code that
// no table entry carries.
func Methods(t testing.TB, dir, recv, params, results string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || types.ExprString(fn.Recv.List[0].Type) != "*"+recv {
				continue
			}
			if fieldTypes(fn.Type.Params) == params && fieldTypes(fn.Type.Results) == results {
				out = append(out, fn.Name.Name)
			}
		}
	}
	return out
}

// fieldTypes reads a parameter or result list as its types, one per value.
func fieldTypes(l *ast.FieldList) string {
	if l == nil {
		return ""
	}
	var ts []string
	for _, f := range l.List {
		for range max(1, len(f.Names)) {
			ts = append(ts, types.ExprString(f.Type))
		}
	}
	return strings.Join(ts, ", ")
}
