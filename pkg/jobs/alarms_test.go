package jobs_test

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestAlarmsListsEveryAlarmConstant reads the package's source: every exported constant
// named Alarm* is in jobs.Alarms and jobs.Alarms holds nothing else, so a new alarm
// cannot miss its CloudWatch alarm (the infra test ties jobs.Alarms to the template).
func TestAlarmsListsEveryAlarmConstant(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Alarm") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s is not a string literal", name.Name)
					}
					declared = append(declared, constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0)))
				}
			}
		}
	}
	listed := slices.Clone(jobs.Alarms)
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) == 0 || !slices.Equal(declared, listed) {
		t.Fatalf("Alarm* constants %q, jobs.Alarms %q", declared, listed)
	}
}
