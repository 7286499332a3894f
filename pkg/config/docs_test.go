package config_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/config"
)

// configurationDoc is where every variable pkg/config reads is documented.
const configurationDoc = "../../docs/configuration.md"

// loaders drives every exported Load* function of pkg/config with a given environment.
// TestLoadersAreAllDriven keeps this list complete.
var loaders = map[string]func(config.Env){
	"LoadAPI":        func(env config.Env) { _, _ = config.LoadAPI(env) },
	"LoadAuth":       func(env config.Env) { _, _ = config.LoadAuth(env) },
	"LoadJobs":       func(env config.Env) { _, _ = config.LoadJobs(env) },
	"LoadEvents":     func(env config.Env) { _, _ = config.LoadEvents(env) },
	"LoadLocal":      func(env config.Env) { _, _ = config.LoadLocal(env) },
	"LoadObs":        func(env config.Env) { _, _ = config.LoadObs(env) },
	"LoadPool":       func(env config.Env) { _, _ = config.LoadPool(env) },
	"LoadUsagePlans": func(env config.Env) { _, _ = config.LoadUsagePlans(env) },
	"LoadCSP": func(env config.Env) {
		fetch := func(context.Context, string) (string, error) { return "token-from-secret", nil }
		_, _ = config.LoadCSP(context.Background(), env, fetch)
		_, _ = config.LoadCSP(context.Background(), env, nil)
	},
	"LoadNIOSXaaS": func(env config.Env) {
		fetch := func(context.Context, string) (string, error) { return `{"email":"e@example.com","password":"p"}`, nil }
		_, _ = config.LoadNIOSXaaS(context.Background(), env, fetch)
		_, _ = config.LoadNIOSXaaS(context.Background(), env, nil)
	},
}

// TestConfigurationIsDocumented holds docs/configuration.md and pkg/config to each other:
// every variable pkg/config reads has a table row there, and every variable in the first
// column of a table row there is read by pkg/config.
func TestConfigurationIsDocumented(t *testing.T) {
	read := map[string]bool{}
	for _, name := range recordedVariables() {
		read[name] = true
	}
	for _, name := range scannedVariables(t) {
		read[name] = true
	}
	documented := documentedVariables(t)

	var undocumented, unread []string
	for name := range read {
		if !documented[name] {
			undocumented = append(undocumented, name)
		}
	}
	for name := range documented {
		if !read[name] {
			unread = append(unread, name)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unread)
	if len(undocumented) > 0 {
		t.Errorf("read by pkg/config but not documented in a table row of docs/configuration.md: %s", strings.Join(undocumented, ", "))
	}
	if len(unread) > 0 {
		t.Errorf("documented in docs/configuration.md but not read by pkg/config: %s", strings.Join(unread, ", "))
	}
}

// TestLoadersAreAllDriven fails when pkg/config gains an exported Load* function that
// loaders does not call, so its variables cannot escape the recording.
func TestLoadersAreAllDriven(t *testing.T) {
	var missing []string
	_, files := sourceFiles(t)
	for _, f := range files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || !strings.HasPrefix(fn.Name.Name, "Load") {
				continue
			}
			if loaders[fn.Name.Name] == nil {
				missing = append(missing, fn.Name.Name)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("add these loaders to the loaders table in docs_test.go: %s", strings.Join(missing, ", "))
	}
}

// recordedVariables calls every loader with environments that answer each variable with
// the same value: empty, a number, a word, a URL and an ARN, so the branches that read a
// variable only when another is set (or valid) run too.
func recordedVariables() []string {
	seen := map[string]bool{}
	for _, value := range []string{"", "1", "x", "https://example.com", "arn:aws:secretsmanager:eu-central-1:123456789012:secret:x"} {
		env := func(name string) string {
			seen[name] = true
			return value
		}
		for _, load := range loaders {
			load(env)
		}
	}
	var names []string
	for name := range seen {
		names = append(names, name)
	}
	return names
}

// scannedVariables finds, in pkg/config's own source, the variable names passed to its
// environment helpers: every method of reader whose first parameter is the variable's
// name, and every direct call of an Env value named env. It catches reads no recording
// reached. A name that is neither a string literal nor a constant (except a helper passing
// its own name parameter on) fails the test, since it could not be checked against the
// documentation.
func scannedVariables(t *testing.T) []string {
	fset, files := sourceFiles(t)
	helpers := map[string]bool{"env": true}
	consts := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if isReaderMethod(d) && firstParamIsName(d) {
					helpers[d.Name.Name] = true
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, id := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								consts[id.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	var names []string
	for _, f := range files {
		for _, decl := range f.Decls {
			passThrough := "" // the name parameter a helper may hand on to another helper
			if fn, ok := decl.(*ast.FuncDecl); ok && isReaderMethod(fn) && helpers[fn.Name.Name] {
				passThrough = "name"
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var fn string
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					fn = fun.Sel.Name
				case *ast.Ident:
					// A bare call is the Env value env; int(...) and friends are conversions.
					if fun.Name == "env" {
						fn = fun.Name
					}
				}
				if !helpers[fn] {
					return true
				}
				switch arg := call.Args[0].(type) {
				case *ast.BasicLit:
					if arg.Kind == token.STRING {
						v, _ := strconv.Unquote(arg.Value)
						names = append(names, v)
						return true
					}
				case *ast.Ident:
					if v, ok := consts[arg.Name]; ok {
						names = append(names, v)
						return true
					}
					if passThrough != "" && arg.Name == passThrough {
						return true
					}
				}
				t.Errorf("%s: %s(...) reads a variable whose name is not a string constant; docs_test.go cannot check it",
					fset.Position(call.Pos()), fn)
				return true
			})
		}
	}
	if len(names) == 0 {
		t.Fatal("found no variable names in pkg/config's source; the scan is broken")
	}
	return names
}

// sourceFiles parses pkg/config's non-test Go files.
func sourceFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

func isReaderMethod(fn *ast.FuncDecl) bool {
	if fn.Recv == nil || len(fn.Recv.List) != 1 {
		return false
	}
	star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	id, ok := star.X.(*ast.Ident)
	return ok && id.Name == "reader"
}

func firstParamIsName(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if len(params) == 0 || len(params[0].Names) == 0 || params[0].Names[0].Name != "name" {
		return false
	}
	id, ok := params[0].Type.(*ast.Ident)
	return ok && id.Name == "string"
}

var (
	tableRow    = regexp.MustCompile(`^\s*\|([^|]*)\|`)
	variableRef = regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
)

// documentedVariables returns the variables named in backticks in the first column of a
// table row of docs/configuration.md. Prose mentions (variables read elsewhere) do not
// count.
func documentedVariables(t *testing.T) map[string]bool {
	raw, err := os.ReadFile(configurationDoc)
	if err != nil {
		t.Fatalf("read %s: %v", configurationDoc, err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, v := range variableRef.FindAllStringSubmatch(m[1], -1) {
			names[v[1]] = true
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s documents no variable in a table's first column", configurationDoc)
	}
	return names
}
