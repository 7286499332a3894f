package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sandbox-broker/broker/pkg/app"
)

// SizeRecord is testdata/bootstrap-sizes.json: bytes of the bootstrap of each kind of
// function, per "<goos>/<goarch>", and the command that measured them.
// infra/bootstrapsize_test.go reads it.
type SizeRecord struct {
	Command string                        `json:"command"`
	Sizes   map[string]map[app.Kind]int64 `json:"sizes"`
}

// recordCommand is how the record is made again.
const recordCommand = "make bootstrap-sizes"

func sizes(args []string) error {
	fs := flag.NewFlagSet("sizes", flag.ExitOnError)
	write := fs.String("write", "", "write the record to this file")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("sizes takes one folder")
	}
	dir := fs.Arg(0)
	platforms, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil {
		return err
	}
	record := SizeRecord{Command: recordCommand, Sizes: map[string]map[app.Kind]int64{}}
	for _, p := range platforms {
		platform := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		bins, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		perKind := map[app.Kind][]string{}
		size := map[string]int64{}
		for _, b := range bins {
			kind, ok := app.KindOf(b.Name())
			if !ok {
				return fmt.Errorf("%s: functions/%s is of no kind (app.KindOf)", platform, b.Name())
			}
			info, err := b.Info()
			if err != nil {
				return err
			}
			perKind[kind] = append(perKind[kind], b.Name())
			size[b.Name()] = info.Size()
		}
		record.Sizes[platform] = map[app.Kind]int64{}
		fmt.Printf("%s\n%-16s %9s %11s  %s\n", platform, "kind", "functions", "bytes", "MiB")
		for _, kind := range app.Kinds {
			fns := perKind[kind]
			if len(fns) == 0 {
				continue
			}
			// A kind's bootstraps differ only in their function's name: the same size. If
			// they ever differ, the largest is recorded and the spread printed.
			largest := slices.MaxFunc(fns, func(a, b string) int { return int(size[a] - size[b]) })
			smallest := slices.MinFunc(fns, func(a, b string) int { return int(size[a] - size[b]) })
			record.Sizes[platform][kind] = size[largest]
			fmt.Printf("%-16s %9d %11d  %.2f", kind, len(fns), size[largest], float64(size[largest])/(1<<20))
			if size[smallest] != size[largest] {
				fmt.Printf("  (from %d: %s)", size[smallest], smallest)
			}
			fmt.Println()
		}
		fmt.Println()
	}
	if *write == "" {
		return nil
	}
	out, err := json.MarshalIndent(record, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(*write, append(out, '\n'), 0o644)
}
