package app_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestEachFunctionUsesTheConstructorOfItsKind parses every functions/<fn>/main.go: the
// route table says which kind each function is, and each kind has the constructor that
// links only what it needs (see the package doc). A trigger route built with app.Route
// would start no job; a plain route built with trigger.Route would link the Lambda client.
func TestEachFunctionUsesTheConstructorOfItsKind(t *testing.T) {
	want := map[string]string{api.AuthorizerFunction: "pkg/app/authorizer.New"}
	for _, r := range api.Routes {
		want[r.Name] = "pkg/app.Route"
		if r.Starts != "" {
			want[r.Name] = "pkg/app/trigger.Route"
		}
	}
	for _, j := range jobs.Table {
		want[j.Name] = "pkg/app/job.Function"
	}
	dirs, err := os.ReadDir(filepath.Join(repoRoot, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		name := d.Name()
		seen[name] = true
		calls := constructorCalls(t, filepath.Join(repoRoot, "functions", name, "main.go"))
		if j, ok := jobs.Named(name); ok && j.UsesAPIGateway {
			// Its builder goes in as an option of job.Function (job.WithUsagePlans).
			calls = slices.DeleteFunc(calls, func(c string) bool { return c == "pkg/app/job.WithUsagePlans" })
		}
		if want[name] == "" {
			t.Errorf("functions/%s is neither a route, a job nor the authorizer", name)
			continue
		}
		if len(calls) != 1 || calls[0] != want[name] {
			t.Errorf("functions/%s/main.go calls %v, want exactly %s", name, calls, want[name])
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no functions/%s for %s", name, want[name])
		}
	}
}

// constructorCalls lists the calls of main.go into the module's pkg/app packages other than
// app.Exit, as "<package path below the module>.<function>".
func constructorCalls(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/sandbox-broker/broker/"
	imports := map[string]string{}
	for _, spec := range f.Imports {
		p, _ := strconv.Unquote(spec.Path.Value)
		name := filepath.Base(p)
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if rel, ok := strings.CutPrefix(p, module); ok {
			imports[name] = rel
		}
	}
	var calls []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok || imports[pkg.Name] == "" {
			return true
		}
		if c := imports[pkg.Name] + "." + sel.Sel.Name; c != "pkg/app.Exit" {
			calls = append(calls, c)
		}
		return true
	})
	return calls
}
