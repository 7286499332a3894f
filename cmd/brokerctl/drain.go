package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

func drainCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	reason := fs.String("reason", "", "")
	return func(ctx context.Context, x *invocation) error {
		req, err := json.Marshal(map[string]string{"prefix": x.args[0], "reason": *reason})
		if err != nil {
			return err
		}
		body, err := x.c.send(ctx, "PUT", "/v1/admin/drain", nil, req)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		what := fmt.Sprintf("prefix %q", x.args[0])
		if x.args[0] == "" {
			what = "every prefix"
		}
		fmt.Fprintf(x.stdout, "draining %s: no new allocation lands from now on; replays, sync, cleanup and expiry go on (brokerctl undrain ends it)\n", what)
		return nil
	}
}

func undrainCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	prefix := fs.String("prefix", "", "")
	return func(ctx context.Context, x *invocation) error {
		var q url.Values
		if *prefix != "" {
			q = url.Values{"prefix": {*prefix}}
		}
		ended, body, err := get[wire.DrainsEnded](ctx, x.c, "DELETE", "/v1/admin/drain", q)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		if len(ended.Ended) == 0 {
			fmt.Fprintln(x.stdout, "no drain ended: none matched")
			return nil
		}
		fmt.Fprintf(x.stdout, "ended the drains of %q; allocations resume within seconds\n", ended.Ended)
		return nil
	}
}
