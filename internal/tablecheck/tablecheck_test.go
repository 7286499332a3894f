package tablecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestRoutesAndJobs checks every piece of every route and job (the README's "Add a
// route" and "Add a job") and reports what is missing, wrong or left over, grouped by
// route and job, in one list.
func TestRoutesAndJobs(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := &check{t: t, root: root, problems: map[string][]string{}, owners: map[string]string{api.AuthorizerFunction: "the authorizer"}}
	c.routeLines()
	c.jobLines()
	c.code()
	c.functions()
	c.samples()
	c.operations()
	c.bootstrapSizes()
	c.unexercised()
	c.proseTables()
	c.report()
}

// check gathers the problems of one run, by owner ("route allocate", "job sync", or a
// path that belongs to nothing).
type check struct {
	t        *testing.T
	root     string
	problems map[string][]string
	// owners maps each function folder to the route, job or authorizer it belongs to.
	owners map[string]string
}

func (c *check) add(owner, format string, args ...any) {
	c.problems[owner] = append(c.problems[owner], fmt.Sprintf(format, args...))
}

func (c *check) path(parts ...string) string {
	return filepath.Join(append([]string{c.root}, parts...)...)
}

// report fails the test once per owner, owners in order, with each of its problems.
func (c *check) report() {
	owners := make([]string, 0, len(c.problems))
	for o := range c.problems {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		c.t.Errorf("%s:\n\t- %s", o, strings.Join(c.problems[o], "\n\t- "))
	}
	if len(owners) > 0 {
		c.t.Log("each piece and where it goes: README.md, \"Checklists\"")
	}
}

func routeOwner(r api.Route) string { return "route " + r.Name }
func jobOwner(j jobs.Job) string    { return "job " + j.Name }

// routeLines checks each line of the route table on its own: a unique name, a known
// scope, the admin surface admin-only, what it does to the table, and a trigger route an
// admin POST that alone starts a job of the job table.
func (c *check) routeLines() {
	starters := map[string]string{}
	for _, r := range api.Routes {
		o := routeOwner(r)
		if prev, dup := c.owners[r.Name]; dup {
			c.add(o, "its name is also %s's: functions/%s and events/%s.json can serve only one", prev, r.Name, r.Name)
		}
		c.owners[r.Name] = o
		if !slices.Contains([]auth.Scope{auth.Public, auth.Track, auth.Admin, auth.Metrics}, r.Scope) {
			c.add(o, "unknown scope %q", r.Scope)
		}
		// The admin surface is admin-only whatever else changes in the table, except the
		// two reads a metrics token may make.
		readsMetrics := r.Method == http.MethodGet && (r.Path == "/v1/admin/stats" || r.Path == "/metrics")
		if (strings.HasPrefix(r.Path, "/v1/admin/") || r.Path == "/metrics") && r.Scope != auth.Admin && !(readsMetrics && r.Scope == auth.Metrics) {
			c.add(o, "%s must have the admin scope", r.Path)
		}
		if r.Scope == auth.Metrics && !readsMetrics {
			c.add(o, "a metrics token may read /metrics and GET /v1/admin/stats only")
		}
		if m, _, status := api.Match(r.Method, r.Path); status != http.StatusOK || m.Name != r.Name {
			c.add(o, "%s %s resolves to route %q (%d), not to itself", r.Method, r.Path, m.Name, status)
		}
		if r.Table < api.NoTable || r.Table > api.WritesTable {
			c.add(o, "Table does not say what its code does to the table (api.TableUse); its IAM grant follows from it")
		}
		if r.Starts == "" {
			continue
		}
		if _, ok := jobs.Named(r.Starts); !ok {
			c.add(o, "Starts %q, which is not in the job table", r.Starts)
		}
		if r.Scope != auth.Admin || r.Method != http.MethodPost {
			c.add(o, "starts a job: it must be an admin POST")
		}
		if prev := starters[r.Starts]; prev != "" {
			c.add(o, "route %s starts %s too; the stack grants the invoke to one function", prev, r.Starts)
		}
		starters[r.Starts] = r.Name
	}
}

// jobLines checks each line of the job table: a unique name, shared with no route, and an
// interval of whole minutes.
func (c *check) jobLines() {
	for _, j := range jobs.Table {
		o := jobOwner(j)
		if prev, dup := c.owners[j.Name]; dup {
			c.add(o, "its name is also %s's: functions/%s and events/%s.json can serve only one", prev, j.Name, j.Name)
		}
		c.owners[j.Name] = o
		if j.Every < time.Minute || j.Every%time.Minute != 0 {
			c.add(o, "interval (Every) %v is not a whole number of minutes, as EventBridge rates are; its schedule, timeout and lease come from it", j.Every)
		}
	}
}

// code checks that each line carries its code, and that no code of the shape is left
// without a line: a route's handler method on *api.API, a job's work method on
// *jobs.Runner. It reads the tables' source, as the methods are unexported.
func (c *check) code() {
	c.carried("pkg/api", "routes.go", "Routes", "handle", "API", "context.Context, *request", "reply, error", "handler", "route")
	c.carried("pkg/jobs", "jobs.go", "Table", "work", "Runner", "context.Context, *runState", "error", "work", "job")
}

func (c *check) carried(dir, file, table, field, recv, params, results, what, kind string) {
	carried := tableMethods(c.t, c.path(dir, file), table, field)
	if len(carried) == 0 {
		c.t.Fatalf("%s/%s: no entries with a Name found in %s", dir, file, table)
	}
	used := map[string]bool{}
	for name, m := range carried {
		if m == "" {
			c.add(kind+" "+name, "its line in %s/%s has no %s method (%s: (*%s).<method>)", dir, file, what, field, recv)
		}
		used[m] = true
	}
	for _, m := range testkit.Methods(c.t, c.path(dir), recv, params, results) {
		if !used[m] {
			c.add(fmt.Sprintf("%s/(*%s).%s", dir, recv, m), "has a %s method's signature, and no line of the %s table carries it", what, kind)
		}
	}
}

// tableMethods reads the composite literal of the variable table in file and returns, for
// each entry, its Name and the method its field holds as (*T).method ("" when none).
func tableMethods(t *testing.T, file, table, field string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if len(vs.Names) != 1 || vs.Names[0].Name != table || len(vs.Values) != 1 {
				continue
			}
			lit, ok := vs.Values[0].(*ast.CompositeLit)
			if !ok {
				t.Fatalf("%s: %s is not a composite literal", file, table)
			}
			for _, elt := range lit.Elts {
				name, method := entryNameAndMethod(elt, field)
				if name != "" {
					out[name] = method
				}
			}
		}
	}
	return out
}

func entryNameAndMethod(elt ast.Expr, field string) (name, method string) {
	entry, ok := elt.(*ast.CompositeLit)
	if !ok {
		return "", ""
	}
	for _, e := range entry.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch key, _ := kv.Key.(*ast.Ident); {
		case key == nil:
		case key.Name == "Name":
			if s, ok := kv.Value.(*ast.BasicLit); ok && s.Kind == token.STRING {
				name, _ = strconv.Unquote(s.Value)
			}
		case key.Name == field:
			if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
				method = sel.Sel.Name
			}
		}
	}
	return name, method
}

// constructors is what each kind of function's main.go calls in pkg/app (pkg/app's
// package doc): exactly these, the first with the function's name.
var constructors = map[app.Kind][]string{
	app.KindRoute:         {"pkg/app.Route"},
	app.KindTriggerRoute:  {"pkg/app/trigger.Route"},
	app.KindAuthorizer:    {"pkg/app/authorizer.New"},
	app.KindJob:           {"pkg/app/job.Function"},
	app.KindUsagePlansJob: {"pkg/app/job.Function", "pkg/app/job.WithUsagePlans"},
}

// functions checks functions/<name>/main.go of each route, job and the authorizer: it
// builds that function with the constructor of its kind, under its own name, and says in
// its doc comment what it is; and names each folder that belongs to nothing.
func (c *check) functions() {
	started := map[string]bool{}
	for _, r := range api.Routes {
		started[r.Starts] = r.Starts != ""
	}
	for name, o := range c.owners {
		path := c.path("functions", name, "main.go")
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			c.add(o, "functions/%s/main.go is missing or does not parse (a copy of a sibling's, README \"Checklists\"): %v", name, err)
			continue
		}
		kind, _ := app.KindOf(name)
		calls := appCalls(f)
		var got []string
		for _, call := range calls {
			got = append(got, call.fn)
		}
		if want := constructors[kind]; !slices.Equal(got, want) {
			c.add(o, "functions/%s/main.go calls %v in pkg/app, want %v (a %s)", name, got, want, kind)
		} else if kind != app.KindAuthorizer && calls[0].name != name {
			c.add(o, "functions/%s/main.go builds %q, not %q", name, calls[0].name, name)
		}
		doc := f.Doc.Text()
		if !strings.HasPrefix(doc, "Command "+name+" ") {
			c.add(o, "functions/%s/main.go: its doc comment does not start \"Command %s \"", name, name)
		}
		if _, isJob := jobs.Named(name); isJob && strings.Contains(doc, "admin API") != started[name] {
			if started[name] {
				c.add(o, "functions/%s/main.go: a route of the table starts it, and its doc comment does not say the admin API does", name)
			} else {
				c.add(o, "functions/%s/main.go: its doc comment says the admin API starts it, and no route of the table does", name)
			}
		}
	}
	dirs, err := os.ReadDir(c.path("functions"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, d := range dirs {
		if _, ok := c.owners[d.Name()]; !ok {
			c.add("functions/"+d.Name(), "belongs to no route, no job and is not the authorizer")
		}
	}
}

type appCall struct {
	fn   string // "<package path below the module>.<function>"
	name string // the fourth argument, when it is a string literal: the function's name
}

// appCalls lists the calls of main.go into the module's pkg/app packages other than
// app.Exit, in source order.
func appCalls(f *ast.File) []appCall {
	const module = "github.com/sandbox-broker/broker/"
	imports := map[string]string{}
	for _, spec := range f.Imports {
		p, _ := strconv.Unquote(spec.Path.Value)
		name := filepath.Base(p)
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if rel, ok := strings.CutPrefix(p, module); ok && strings.HasPrefix(rel, "pkg/app") {
			imports[name] = rel
		}
	}
	var calls []appCall
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
		c := appCall{fn: imports[pkg.Name] + "." + sel.Sel.Name}
		if c.fn == "pkg/app.Exit" {
			return true
		}
		if len(call.Args) >= 4 {
			if s, ok := call.Args[3].(*ast.BasicLit); ok && s.Kind == token.STRING {
				c.name, _ = strconv.Unquote(s.Value)
			}
		}
		calls = append(calls, c)
		return true
	})
	return calls
}

// samples checks events/<name>.json of each route (the REST proxy event of that route,
// through the authorizer of its scope), each job (an EventBridge scheduled event) and the
// authorizer (a REQUEST authorizer event), and names each sample that belongs to nothing.
func (c *check) samples() {
	for _, r := range api.Routes {
		var ev events.APIGatewayProxyRequest
		if !c.readSample(routeOwner(r), r.Name, &ev) {
			continue
		}
		o := routeOwner(r)
		if ev.Resource != r.Path || ev.HTTPMethod != r.Method || ev.RequestContext.RequestID == "" {
			c.add(o, "events/%s.json: %s %s (request id %q), want %s %s", r.Name, ev.HTTPMethod, ev.Resource, ev.RequestContext.RequestID, r.Method, r.Path)
		}
		if m, params, status := api.Match(ev.HTTPMethod, ev.Path); status != http.StatusOK || m.Name != r.Name || !maps.Equal(params, ev.PathParameters) {
			c.add(o, "events/%s.json: path %s resolves to %q %v (%d)", r.Name, ev.Path, m.Name, params, status)
		}
		scope, _ := ev.RequestContext.Authorizer[api.ContextScope].(string)
		if (r.Scope == auth.Public) != (scope == "") || (scope != "" && scope != string(r.Scope)) {
			c.add(o, "events/%s.json: authorizer scope %q for a %s route", r.Name, scope, r.Scope)
		}
	}
	for _, j := range jobs.Table {
		var ev scheduledEvent
		if !c.readSample(jobOwner(j), j.Name, &ev) {
			continue
		}
		if ev.Version != "0" || ev.ID == "" || ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" ||
			len(ev.Account) != 12 || ev.Time.IsZero() || ev.Region == "" || len(ev.Resources) != 1 ||
			!strings.HasPrefix(ev.Resources[0], "arn:aws:events:"+ev.Region+":"+ev.Account+":rule/") || string(ev.Detail) != "{}" {
			c.add(jobOwner(j), "events/%s.json is not an EventBridge scheduled event: %+v", j.Name, ev)
		}
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if c.readSample("the authorizer", api.AuthorizerFunction, &ev) && (ev.Type != "REQUEST" || ev.MethodArn == "" || ev.Headers[api.HeaderAuthorization] == "") {
		c.add("the authorizer", "events/%s.json is not a REQUEST authorizer event with an Authorization header", api.AuthorizerFunction)
	}
	samples, err := filepath.Glob(c.path("events", "*"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range samples {
		name, isJSON := strings.CutSuffix(filepath.Base(s), ".json")
		if _, ok := c.owners[name]; !ok || !isJSON {
			c.add("events/"+filepath.Base(s), "belongs to no route, no job and is not the authorizer")
		}
	}
}

// scheduledEvent is the shape of an EventBridge "Scheduled Event", no field more.
type scheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// readSample decodes events/<name>.json into ev, refusing fields ev does not have.
func (c *check) readSample(owner, name string, ev any) bool {
	raw, err := os.ReadFile(c.path("events", name+".json"))
	if err != nil {
		c.add(owner, "events/%s.json is missing (its sample event, README \"Checklists\")", name)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		c.add(owner, "events/%s.json: %v", name, err)
		return false
	}
	return true
}

// answers is what every route of its kind can answer, so its operation must document it:
// API Gateway's throttling (429) and a failed function (500) for every route; the
// authorizer's 401 and 403, a bad request (400) and a body over the limit (413) for every
// route behind a token; the pool's unavailability (503) for every route that calls the
// table; a bad or unknown path parameter (400, 404); a trigger's 202 and 409 JOB_RUNNING.
func answers(r api.Route) []string {
	want := []string{"429", "500"}
	if r.Scope != auth.Public {
		want = append(want, "400", "401", "403", "413")
	}
	if r.Table != api.NoTable {
		want = append(want, "503")
	}
	if strings.Contains(r.Path, "{") {
		want = append(want, "400", "404")
	}
	if r.Starts != "" {
		want = append(want, "202", "409")
	}
	return want
}

// operations checks each route's operation in api/openapi.yaml with the answers of its
// kind, and names each operation that is no route.
func (c *check) operations() {
	spec := apitest.Spec(c.t)
	for _, r := range api.Routes {
		item := spec.Paths.Find(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			c.add(routeOwner(r), "api/openapi.yaml has no operation %s %s", r.Method, r.Path)
			continue
		}
		op, missing := item.GetOperation(r.Method), []string(nil)
		for _, status := range answers(r) {
			if op.Responses.Value(status) == nil && !slices.Contains(missing, status) {
				missing = append(missing, status)
			}
		}
		if len(missing) > 0 {
			c.add(routeOwner(r), "api/openapi.yaml: %s %s does not document %v, which every route of its kind can answer", r.Method, r.Path, missing)
		}
	}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			if !slices.ContainsFunc(api.Routes, func(r api.Route) bool { return r.Path == path && r.Method == method }) {
				c.add("api/openapi.yaml", "%s %s is no route of the table", method, path)
			}
		}
	}
}

// bootstrapSizes checks that testdata/bootstrap-sizes.json records, for every platform it
// records, the size of each kind of function the tables use, and no other kind. A route or
// job of a kind already recorded needs nothing; a new kind needs `make bootstrap-sizes`.
func (c *check) bootstrapSizes() {
	var recorded struct {
		Command string                        `json:"command"`
		Sizes   map[string]map[app.Kind]int64 `json:"sizes"`
	}
	raw, err := os.ReadFile(c.path("testdata", "bootstrap-sizes.json"))
	if err == nil {
		err = json.Unmarshal(raw, &recorded)
	}
	if err != nil {
		c.add("testdata/bootstrap-sizes.json", "%v", err)
		return
	}
	for _, platform := range []string{"linux/arm64", "linux/amd64"} {
		if recorded.Sizes[platform] == nil {
			c.add("testdata/bootstrap-sizes.json", "no sizes for %s: run %s", platform, recorded.Command)
		}
	}
	for name, o := range c.owners {
		kind, _ := app.KindOf(name)
		for platform, sizes := range recorded.Sizes {
			if sizes[kind] <= 0 {
				c.add(o, "a %s, a kind with no bootstrap size for %s in testdata/bootstrap-sizes.json: run %s", kind, platform, recorded.Command)
			}
		}
	}
	for platform, sizes := range recorded.Sizes {
		for kind := range sizes {
			if !slices.Contains(app.Kinds, kind) {
				c.add("testdata/bootstrap-sizes.json", "%s records a size for %q, which is no kind of function", platform, kind)
			}
		}
	}
}

// unexercised checks that every function with table access has its entry in Unexercised
// and that each entry is a function's.
func (c *check) unexercised() {
	for _, r := range api.Routes {
		if _, ok := Unexercised[r.Name]; !ok && r.Table != api.NoTable {
			c.add(routeOwner(r), "no entry in internal/tablecheck/unexercised.go: which table actions its role gets that its sample does not call, and why (empty: none)")
		}
	}
	for _, j := range jobs.Table {
		if _, ok := Unexercised[j.Name]; !ok {
			c.add(jobOwner(j), "no entry in internal/tablecheck/unexercised.go: which table actions its role gets that its sample does not call, and why (empty: none)")
		}
	}
	for name := range Unexercised {
		if _, ok := c.owners[name]; !ok && name != "*" {
			c.add("internal/tablecheck/unexercised.go", "an entry for %s, which is no function", name)
		}
	}
}

// proseTables holds the two prose tables that stay to the code: the admin routes' answers
// in docs/api.md (a row per admin or metrics route, first column `METHOD /path?query`)
// and the jobs in docs/architecture.md §6 (a row per job with its schedule).
func (c *check) proseTables() {
	const apiDoc, jobsDoc = "docs/api.md", "docs/architecture.md"
	listed := map[string]bool{}
	for _, row := range c.markdownTable(apiDoc, "| route | answer |") {
		for _, m := range codeSpan.FindAllStringSubmatch(row[0], -1) {
			route, _, _ := strings.Cut(m[1], "?")
			listed[route] = true
		}
	}
	for _, r := range api.Routes {
		key := r.Method + " " + r.Path
		switch admin := r.Scope == auth.Admin || r.Scope == auth.Metrics; {
		case admin && !listed[key]:
			c.add(routeOwner(r), "no row in %s's admin route table (\"| route | answer |\")", apiDoc)
		case !admin && listed[key]:
			c.add(routeOwner(r), "a row in %s's admin route table, and its scope is %s", apiDoc, r.Scope)
		}
		delete(listed, key)
	}
	for key := range listed {
		c.add(apiDoc, "the admin route table lists %s, which is no route", key)
	}
	schedules := map[string]string{}
	for _, row := range c.markdownTable(jobsDoc, "| job | schedule | what |") {
		if len(row) > 1 {
			schedules[row[0]] = row[1]
		}
	}
	for _, j := range jobs.Table {
		switch got, ok := schedules[j.Name]; {
		case !ok:
			c.add(jobOwner(j), "no row in the job table of docs/architecture.md §6")
		case got != j.Schedule():
			c.add(jobOwner(j), "%s's job table says %s, its interval gives %s", jobsDoc, got, j.Schedule())
		}
		delete(schedules, j.Name)
	}
	for name := range schedules {
		c.add(jobsDoc, "the job table lists %s, which is no job", name)
	}
}

var codeSpan = regexp.MustCompile("`([A-Z]+ /[^`]*)`")

// markdownTable returns the cells of the body rows of the table in doc whose header row is
// header.
func (c *check) markdownTable(doc, header string) [][]string {
	raw, err := os.ReadFile(c.path(doc))
	if err != nil {
		c.t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	i := slices.Index(lines, header)
	if i < 0 {
		c.add(doc, "no table with the header %q", header)
		return nil
	}
	var rows [][]string
	for _, line := range lines[i+2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		var cells []string
		for _, cell := range strings.Split(strings.Trim(line, "|"), " | ") {
			cells = append(cells, strings.TrimSpace(cell))
		}
		rows = append(rows, cells)
	}
	return rows
}
