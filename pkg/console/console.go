// Package console is the operator console: one HTML page and its scripts and styles,
// embedded in the binary and served under content-hashed names, so that a browser may
// keep an asset for good while the page itself is never cached. The page talks to the
// admin API only (docs/architecture.md §3); it knows nothing of Lambda, which pkg/api
// adapts it to.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// ContentSecurityPolicy is the policy of the console's page and assets: its own scripts,
// styles and API only, no inline script or style, never framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Cache policies: the page names the current assets, so it is read anew every time; an
// asset's name changes with its content, so a browser may keep it for a year.
const (
	PageCacheControl  = "no-store"
	AssetCacheControl = "public, max-age=31536000, immutable"
)

// PageContentType is the page's media type.
const PageContentType = "text/html; charset=utf-8"

// Asset is one script or style as served.
type Asset struct {
	ContentType string
	Body        []byte
}

//go:embed assets
var embedded embed.FS

// The references rewritten to hashed names: in the page, the relative URLs
// "console/<file>" of its script and style (relative, because in AWS the API is served
// under a stage prefix); in a module, the relative imports "./<file>".
var (
	pageReference   = regexp.MustCompile(`"console/([^"]+)"`)
	moduleReference = regexp.MustCompile(`(?:from|import) "\./([^"]+)"`)
)

// fileName is what an asset may be called: a flat name (the route's {asset} is one path
// segment) that is safe in a URL as it is.
var fileName = regexp.MustCompile(`^[a-z0-9-]+\.[a-z]+$`)

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// Site is the page and its assets by hashed name.
type Site struct {
	page   []byte
	assets map[string]Asset
}

// site is built once from the embedded files; New fails only on a broken reference in
// them, which the package's tests catch.
var site = func() *Site {
	s, err := New(embedded)
	if err != nil {
		panic(err)
	}
	return s
}()

// Default is the site of the embedded files.
func Default() *Site { return site }

// New builds the site from files: assets/index.html and the scripts and styles it
// references, directly or by import. Every reference becomes the referenced file's
// hashed name, <base>.<12 hex digits of SHA-256>.<ext>, computed after its own
// references are rewritten, so a change anywhere renames every asset that depends on it.
func New(files fs.FS) (*Site, error) {
	b := builder{files: files, hashed: map[string]string{}, visiting: map[string]bool{}, assets: map[string]Asset{}}
	page, err := fs.ReadFile(files, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	page, err = b.rewrite(page, pageReference)
	if err != nil {
		return nil, err
	}
	return &Site{page: page, assets: b.assets}, nil
}

// Page is the HTML page.
func (s *Site) Page() []byte { return s.page }

// Asset returns the asset of a hashed name.
func (s *Site) Asset(name string) (Asset, bool) {
	a, ok := s.assets[name]
	return a, ok
}

// AssetNames lists the hashed names, sorted.
func (s *Site) AssetNames() []string {
	names := make([]string, 0, len(s.assets))
	for n := range s.assets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type builder struct {
	files    fs.FS
	hashed   map[string]string // file → hashed name
	visiting map[string]bool
	assets   map[string]Asset
}

// rewrite replaces the file named by each reference of pattern in content (its first
// group) by the file's hashed name.
func (b *builder) rewrite(content []byte, pattern *regexp.Regexp) ([]byte, error) {
	var firstErr error
	out := pattern.ReplaceAllFunc(content, func(m []byte) []byte {
		sub := pattern.FindSubmatchIndex(m)
		file := string(m[sub[2]:sub[3]])
		name, err := b.add(file)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return m
		}
		return []byte(string(m[:sub[2]]) + name + string(m[sub[3]:]))
	})
	return out, firstErr
}

// add makes the asset of file (and of what it imports) and returns its hashed name.
func (b *builder) add(file string) (string, error) {
	if name, ok := b.hashed[file]; ok {
		return name, nil
	}
	if b.visiting[file] {
		return "", fmt.Errorf("console: import cycle through %s", file)
	}
	b.visiting[file] = true
	defer delete(b.visiting, file)
	ext := path.Ext(file)
	contentType, ok := contentTypes[ext]
	if !ok || !fileName.MatchString(file) {
		return "", fmt.Errorf("console: %s: not an asset name, or no media type for %q", file, ext)
	}
	body, err := fs.ReadFile(b.files, "assets/"+file)
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	if ext == ".js" {
		if body, err = b.rewrite(body, moduleReference); err != nil {
			return "", err
		}
	}
	sum := sha256.Sum256(body)
	name := strings.TrimSuffix(file, ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
	b.hashed[file] = name
	b.assets[name] = Asset{ContentType: contentType, Body: body}
	return name, nil
}
