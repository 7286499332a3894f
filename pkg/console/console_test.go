package console

import (
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func files(app, api string) fstest.MapFS {
	return fstest.MapFS{
		"assets/index.html": {Data: []byte(`<link rel="stylesheet" href="console/style.css"><script type="module" src="console/app.js"></script>`)},
		"assets/style.css":  {Data: []byte("body{}")},
		"assets/app.js":     {Data: []byte(app)},
		"assets/api.js":     {Data: []byte(api)},
	}
}

var hashed = regexp.MustCompile(`^[a-z0-9-]+\.[0-9a-f]{12}\.(js|css)$`)

// The page and the modules name hashed files only, and each name resolves to its asset.
func TestReferencesBecomeHashedNames(t *testing.T) {
	s, err := New(files(`import { call } from "./api.js";`, `export const call = 1;`))
	if err != nil {
		t.Fatal(err)
	}
	names := s.AssetNames()
	if len(names) != 3 {
		t.Fatalf("assets %v", names)
	}
	byBase := map[string]string{}
	for _, n := range names {
		if !hashed.MatchString(n) {
			t.Fatalf("%s is not a hashed name", n)
		}
		byBase[n[:strings.Index(n, ".")]] = n
	}
	page := string(s.Page())
	if !strings.Contains(page, `href="console/`+byBase["style"]+`"`) || !strings.Contains(page, `src="console/`+byBase["app"]+`"`) {
		t.Fatalf("page %s, assets %v", page, names)
	}
	app, _ := s.Asset(byBase["app"])
	if string(app.Body) != `import { call } from "./`+byBase["api"]+`";` || app.ContentType != "text/javascript; charset=utf-8" {
		t.Fatalf("app.js %+v", app)
	}
	if css, _ := s.Asset(byBase["style"]); css.ContentType != "text/css; charset=utf-8" {
		t.Fatalf("style %+v", css)
	}
	if _, ok := s.Asset("app.js"); ok {
		t.Fatal("an unhashed name resolves")
	}
}

// A change in an imported module renames it and every module importing it.
func TestAChangeRenamesTheDependents(t *testing.T) {
	a, err := New(files(`import "./api.js";`, `export const v = 1;`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(files(`import "./api.js";`, `export const v = 2;`))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range a.AssetNames() {
		changed := n != b.AssetNames()[i]
		if strings.HasPrefix(n, "style.") == changed {
			t.Errorf("%s → %s", n, b.AssetNames()[i])
		}
	}
}

func TestBrokenReferencesFail(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"a missing module": files(`import "./nope.js";`, ``),
		"a cycle":          files(`import "./api.js";`, `import "./app.js";`),
		"an unknown type":  {"assets/index.html": {Data: []byte(`<script src="console/app.js"></script>`)}, "assets/app.js": {Data: []byte(`import "./x.json";`)}},
		"no page":          {"assets/app.js": {Data: []byte(``)}},
	} {
		if _, err := New(fs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The embedded console builds, and its page names every asset it has.
func TestEmbeddedConsole(t *testing.T) {
	s := Default()
	page := string(s.Page())
	if len(s.AssetNames()) < 5 {
		t.Fatalf("assets %v", s.AssetNames())
	}
	for _, ref := range regexp.MustCompile(`"console/([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if _, ok := s.Asset(ref[1]); !ok {
			t.Errorf("the page names %s, which is no asset", ref[1])
		}
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<script>") {
		t.Error("the page has inline style or script, which its CSP blocks")
	}
}
