// Package doccheck holds the repository's citations to what they cite: every "docs/<file>.md
// §N", heading ("docs/<file>.md, "Heading"") and upstream defect ("upstream.md D7") a Go
// file names exists, every § names its docs/ file, and nothing points outside the repository
// (an issue number, the shared brief). `make check` runs it with the tables' check.
package doccheck
