package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/events"
)

// followInterval is how often events --follow looks for new lines.
const followInterval = 200 * time.Millisecond

// eventsCmd prints the domain events of the local stack's events file (EVENTS_FILE, its
// default when unset; docs/events.md), oldest first; --follow keeps printing what is
// appended until Ctrl-C. It reads this machine's file, not the API.
func eventsCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	file := fs.String("file", "", "")
	follow := fs.Bool("follow", false, "")
	only := fs.String("type", "", "")
	sandbox := fs.String("sandbox", "", "")
	return func(ctx context.Context, x *invocation) error {
		path := *file
		if path == "" {
			path = x.eventsFile
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%w (is the local stack running? it names its events file in its banner; pass --file)", err)
		}
		defer f.Close()
		r := bufio.NewReader(f)
		var partial []byte
		for {
			line, err := r.ReadBytes('\n')
			partial = append(partial, line...)
			if errors.Is(err, io.EOF) {
				if !*follow {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(followInterval):
				}
				continue
			}
			if err != nil {
				return err
			}
			if err := x.printEvent(partial, *only, *sandbox); err != nil {
				return err
			}
			partial = nil
		}
	}
}

// printEvent prints one line of the events file: as it is with --json, else one line of
// when, what, which sandbox, whose and by whom.
func (x *invocation) printEvent(line []byte, only, sandbox string) error {
	var e events.Envelope
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("the events file holds a line that is no event: %w", err)
	}
	d := e.Detail
	if (only != "" && string(d.Type) != only && !strings.HasSuffix(string(d.Type), "."+only)) ||
		(sandbox != "" && (d.Sandbox == nil || d.Sandbox.ID != sandbox)) {
		return nil
	}
	if x.opts.json {
		_, err := x.stdout.Write(line)
		return err
	}
	what := ""
	switch {
	case d.Sandbox != nil:
		what = fmt.Sprintf("%s %s", d.Sandbox.ID, d.Sandbox.Name)
	case d.Drain != nil:
		what = fmt.Sprintf("prefix %q", d.Drain.Prefix)
	}
	who := d.Actor.Kind
	if d.Actor.Name != "" {
		who += " " + d.Actor.Name
	}
	fields := []string{d.Time.Format("2006-01-02T15:04:05.000Z07:00"), string(d.Type), what}
	for _, kv := range [][2]string{{"student", d.Student}, {"lab", d.Lab}, {"client", d.Client}, {"error", d.ErrorClass}, {"by", who}} {
		if kv[1] != "" {
			fields = append(fields, kv[0]+"="+kv[1])
		}
	}
	_, err := fmt.Fprintln(x.stdout, strings.Join(fields, "  "))
	return err
}

// replayEventsCmd publishes the events' dead letters again (POST /v1/admin/events/replay).
func replayEventsCmd(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		res, body, err := get[wire.EventReplay](ctx, x.c, "POST", "/v1/admin/events/replay", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%d dead letters taken: %d events published, %d letters deleted, %d kept for a later replay\n",
			res.Messages, res.Published, res.Deleted, res.Kept)
		return nil
	}
}
