package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
)

// baseline is the folder (under functions' bootstraps) of the empty Go function: aws-lambda-go
// and nothing else, the floor every row is read against.
const baseline = "emptyfunction"

// fakeAWS is the part of AWS a function meets before its first event, on loopback: the
// Lambda runtime API's "next invocation", whose first call ends the init Lambda reports,
// and Secrets Manager's GetSecretValue, which the CSP jobs call at start.
type fakeAWS struct {
	next chan time.Time
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/2018-06-01/runtime/invocation/next" {
		f.next <- time.Now()
		<-r.Context().Done() // the harness ends the process: no event is ever served
		return
	}
	if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
		var in struct{ SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": "coldstart", "SecretString": "coldstart-token"})
		return
	}
	http.Error(w, "not served by the cold-start harness", http.StatusNotFound)
}

// lambdaEnv is the environment Lambda gives a provided.al2023 function (the variables the
// runtime sets, temporary credentials, no HOME) and the broker's variables of every kind,
// so each function finds what it reads. DYNAMODB_ENDPOINT is not set: the clients are
// those of AWS, and no DynamoDB call happens before the first event.
func lambdaEnv(function, runtimeAPI string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin", "LANG=en_US.UTF-8", "TZ=:UTC", "LAMBDA_TASK_ROOT=/var/task", "_HANDLER=bootstrap",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME=broker-" + function, "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_ACCESS_KEY_ID=ASIACOLDSTARTEXAMPLE", "AWS_SECRET_ACCESS_KEY=coldstart/secret/key/example", "AWS_SESSION_TOKEN=coldstart-session-token",
		"AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000", "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=http://" + runtimeAPI,
		"TABLE_NAME=broker-pool", "LOG_LEVEL=info", "CORS_ALLOWED_ORIGINS=https://console.example.com",
		"TOKENS_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-tokens-AbCdEf",
		"CSP_BASE_URL=https://csp.example.com/v2", "CSP_TOKEN_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:broker-csp-AbCdEf",
		"NIOSXAAS_ENABLED=false", "REST_API_ID=abc123defg", "REST_API_STAGE=v1",
		"GODEBUG=inittrace=1",
	}
	for _, r := range api.Routes {
		if r.Starts != "" {
			env = append(env, api.JobFunctionEnv(r.Starts)+"=broker-"+r.Starts)
		}
	}
	return env
}

// start is one cold start: the process's init until its first call for an event, and the
// package inits it traced.
type start struct {
	total       time.Duration            // from starting the process to its first "next invocation"
	cpu         time.Duration            // the CPU time (user and system) the process used until then
	packageInit time.Duration            // the sum of every package's init
	afterInit   time.Duration            // from the end of package init to the first "next invocation": main
	perPackage  map[string]time.Duration // each package's init
}

func initTimes(args []string) error {
	fs := flag.NewFlagSet("init", flag.ExitOnError)
	runs := fs.Int("runs", 15, "cold starts per function")
	each := fs.Bool("each", false, "a row per function, not only per kind")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("init takes the folders of one or more builds")
	}
	var builds []build
	for _, dir := range fs.Args() {
		functions, err := bootstrapNames(dir)
		if err != nil {
			return err
		}
		builds = append(builds, build{dir: dir, functions: functions, starts: map[string][]start{}})
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	aws := &fakeAWS{next: make(chan time.Time, 1)}
	srv := &http.Server{Handler: aws, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	load := loadAverage()
	began := time.Now()
	parts := map[string][]time.Duration{}
	// Rounds interleave every function of every build (in a fresh order each round), so a
	// burst of load on the shared machine falls on all of them rather than on one.
	type job struct {
		b  *build
		fn string
	}
	for range *runs {
		var order []job
		for i := range builds {
			for _, fn := range append([]string{baseline}, builds[i].functions...) {
				order = append(order, job{&builds[i], fn})
			}
		}
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, j := range order {
			s, err := coldStart(filepath.Join(j.b.dir, j.fn), lambdaEnv(j.fn, ln.Addr().String()), aws.next)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(j.b.dir, j.fn), err)
			}
			j.b.starts[j.fn] = append(j.b.starts[j.fn], s)
		}
		for _, part := range compositionParts {
			d, err := partInFreshProcess(part.name, lambdaEnv("allocate", ln.Addr().String()))
			if err != nil {
				return fmt.Errorf("part %s: %w", part.name, err)
			}
			parts[part.name] = append(parts[part.name], d)
		}
	}
	printInitTable(builds, parts, *runs, *each, load, loadAverage(), time.Since(began))
	return nil
}

// build is one folder of bootstraps and its cold starts.
type build struct {
	dir       string
	functions []string
	starts    map[string][]start
}

// label names the build in the table: its folder's name.
func (b build) label() string { return filepath.Base(b.dir) }

// bootstrapNames lists the functions built in dir (every file but the baseline), each of a
// known kind.
func bootstrapNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Name() == baseline {
			continue
		}
		if _, ok := app.KindOf(e.Name()); !ok {
			return nil, fmt.Errorf("%s is of no kind of function (app.KindOf)", e.Name())
		}
		names = append(names, e.Name())
	}
	if _, err := os.Stat(filepath.Join(dir, baseline)); err != nil {
		return nil, fmt.Errorf("no baseline: %w", err)
	}
	return names, nil
}

// coldStart starts bootstrap as Lambda does and ends it at its first "next invocation".
func coldStart(bootstrap string, env []string, next <-chan time.Time) (start, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(bootstrap)
	cmd.Env = env
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	exited := make(chan error, 1)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return start{}, err
	}
	go func() { exited <- cmd.Wait() }()
	var s start
	select {
	case at := <-next:
		s.total = at.Sub(began)
		_ = cmd.Process.Kill()
		<-exited
		// After its call the process waits on the socket: its CPU time is that of the init.
		s.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	case err := <-exited:
		return start{}, fmt.Errorf("exited before asking for an event (%v):\n%s", err, stderr.String())
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		return start{}, fmt.Errorf("no request for an event within a minute:\n%s", stderr.String())
	}
	var initEnd time.Duration
	s.perPackage = map[string]time.Duration{}
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// "init <package> @<since start> ms, <clock> ms clock, <bytes> bytes, <allocs> allocs"
		f := strings.Fields(sc.Text())
		if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		at, err1 := strconv.ParseFloat(strings.TrimPrefix(f[2], "@"), 64)
		clock, err2 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		d := time.Duration(clock * float64(time.Millisecond))
		s.packageInit += d
		s.perPackage[f[1]] += d
		initEnd = max(initEnd, time.Duration((at+clock)*float64(time.Millisecond)))
	}
	s.afterInit = s.total - initEnd
	return s, nil
}

func printInitTable(builds []build, parts map[string][]time.Duration, runs int, each bool, loadBefore, loadAfter string, wall time.Duration) {
	fmt.Printf("cold starts: %d per function, interleaved; load average %s before, %s after; %s\n\n",
		runs, loadBefore, loadAfter, wall.Round(time.Second))
	fmt.Printf("%-12s %-26s %21s %21s %21s %21s\n", "build", "functions", "init p50 / p90", "CPU p50 / p90", "package init", "main p50 / p90")
	fmt.Println(strings.Repeat("-", 127))
	row := func(label, name string, ss []start) {
		pick := func(f func(start) time.Duration) string {
			ds := make([]time.Duration, len(ss))
			for i, s := range ss {
				ds[i] = f(s)
			}
			return quantiles(ds)
		}
		fmt.Printf("%-12s %-26s %21s %21s %21s %21s\n", label, name,
			pick(func(s start) time.Duration { return s.total }),
			pick(func(s start) time.Duration { return s.cpu }),
			pick(func(s start) time.Duration { return s.packageInit }),
			pick(func(s start) time.Duration { return s.afterInit }))
	}
	for _, b := range builds {
		row(b.label(), "baseline (empty function)", b.starts[baseline])
		byKind := map[app.Kind][]string{}
		for _, fn := range b.functions {
			k, _ := app.KindOf(fn)
			byKind[k] = append(byKind[k], fn)
		}
		for _, k := range app.Kinds {
			var all []start
			for _, fn := range byKind[k] {
				all = append(all, b.starts[fn]...)
				if each {
					row(b.label(), "  "+fn, b.starts[fn])
				}
			}
			if len(all) > 0 {
				row(b.label(), fmt.Sprintf("%s (%d)", k, len(byKind[k])), all)
			}
		}
	}
	fmt.Println(`
init: from starting the process to its first "next invocation" call to the runtime API (what
Lambda reports as Init Duration); CPU: the user and system time the process used until
then, which depends far less on the machine's load; package init: the sum of every
package's init (GODEBUG=inittrace=1); main: from the end of package init to that call
(configuration, clients, secrets, then lambda.Start). A kind's row pools the starts of all
its functions. The baseline is an empty Go function.`)

	last := builds[len(builds)-1]
	fmt.Printf("\npackage inits of the routes of %s (median over every start of the kind), largest first:\n", last.label())
	perPackage := map[string][]time.Duration{}
	n := 0
	for _, fn := range last.functions {
		if k, _ := app.KindOf(fn); k != app.KindRoute {
			continue
		}
		for _, s := range last.starts[fn] {
			n++
			for p, d := range s.perPackage {
				perPackage[p] = append(perPackage[p], d)
			}
		}
	}
	type pkgInit struct {
		name   string
		median time.Duration
	}
	var inits []pkgInit
	for p, ds := range perPackage {
		for len(ds) < n { // a package that traced nothing in a start
			ds = append(ds, 0)
		}
		inits = append(inits, pkgInit{p, median(ds)})
	}
	slices.SortFunc(inits, func(a, b pkgInit) int { return int(b.median - a.median) })
	for _, p := range inits[:min(15, len(inits))] {
		fmt.Printf("  %8s  %s\n", fmtMs(p.median), p.name)
	}

	fmt.Printf("\nparts of a composition (this tree's code), each the first call in a fresh process, p50 / p90:\n")
	for _, part := range compositionParts {
		fmt.Printf("  %19s  %s\n", quantiles(parts[part.name]), part.name)
	}
}

func quantiles(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmtMs(s[len(s)/2]) + " / " + fmtMs(s[(len(s)*9+9)/10-1])
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtMs(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// loadAverage is /proc/loadavg's three figures, or "?" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " / ")
}
