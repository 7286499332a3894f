package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

func profilesCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		list, body, err := get[wire.Profiles](ctx, x.c, "GET", "/v1/admin/profiles", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%-20s %-12s %8s %8s %8s %6s %6s  %s\n", "LAB", "PREFIX", "MINUTES", "EXTEND", "MAX", "LIMIT", "LOW", "409 MESSAGE")
		for _, p := range list.Profiles {
			fmt.Fprintf(x.stdout, "%-20q %-12q %8d %8d %8d %6d %6d  %s\n", p.Lab, p.Prefix, p.LabDurationMinutes, p.ExtensionMinutes,
				p.MaxDurationMinutes, p.StudentLimit, p.LowWater, p.NoSandboxMessage)
		}
		return nil
	}
}

func setProfileCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	var p wire.Profile
	fs.StringVar(&p.Lab, "lab", "", "")
	fs.StringVar(&p.Prefix, "prefix", "", "")
	fs.IntVar(&p.LabDurationMinutes, "minutes", 0, "")
	fs.IntVar(&p.ExtensionMinutes, "extend-minutes", 0, "")
	fs.IntVar(&p.MaxDurationMinutes, "max-minutes", 0, "")
	fs.IntVar(&p.StudentLimit, "student-limit", 0, "")
	fs.IntVar(&p.LowWater, "low-water", 0, "")
	fs.StringVar(&p.NoSandboxMessage, "message", "", "")
	return func(ctx context.Context, x *invocation) error {
		req, err := json.Marshal(p)
		if err != nil {
			return err
		}
		body, err := x.c.send(ctx, "PUT", "/v1/admin/profiles", nil, req)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "profile lab=%q prefix=%q saved: new allocations follow it within seconds, running ones keep their terms\n", p.Lab, p.Prefix)
		return nil
	}
}

func capacityCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	prefix, w := fs.String("prefix", "", ""), windowFlags(fs)
	return func(ctx context.Context, x *invocation) error {
		q := url.Values{"prefix": {*prefix}, "seats": {strconv.Itoa(*w.seats)}, "starts_at": {strconv.FormatInt(w.start.Unix(), 10)},
			"ends_at": {strconv.FormatInt(w.start.Add(*w.length).Unix(), 10)}, "lead_minutes": {strconv.Itoa(int(w.lead.Minutes()))}}
		c, body, err := get[wire.Capacity](ctx, x.c, "GET", "/v1/admin/capacity", q)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		verdict := "coverable"
		if !c.Coverable {
			verdict = fmt.Sprintf("NOT coverable: %d short", c.Shortfall)
		}
		fmt.Fprintf(x.stdout, "%d seats of %q: %s (available %d, promised to other reservations %d, held by them %d, pending deletion %d, which covers nothing)\n",
			c.Seats, c.Prefix, verdict, c.Available, c.PromisedToOthers, c.HeldByOthers, c.PendingDeletion)
		return nil
	}
}

// window is the flags of a reservation's window.
type window struct {
	seats        *int
	start        *time.Time
	length, lead *time.Duration
}

func windowFlags(fs *flag.FlagSet) window {
	w := window{seats: fs.Int("seats", 0, ""), length: fs.Duration("for", 3*time.Hour, ""), lead: fs.Duration("lead", 30*time.Minute, ""), start: new(time.Time)}
	fs.Func("start", "", func(v string) error {
		t, err := time.Parse(time.RFC3339, v)
		*w.start = t
		return err
	})
	return w
}

func reserveCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	lab, client, prefix := fs.String("lab", "", ""), fs.String("client", "", ""), fs.String("prefix", "", "")
	overflow, force := fs.Bool("overflow", true, ""), fs.Bool("force", false, "")
	w := windowFlags(fs)
	return func(ctx context.Context, x *invocation) error {
		req, err := json.Marshal(wire.Reservation{Lab: *lab, Client: *client, Prefix: *prefix, Seats: *w.seats, StartsAt: w.start.Unix(),
			EndsAt: w.start.Add(*w.length).Unix(), LeadMinutes: int(w.lead.Minutes()), Overflow: *overflow})
		if err != nil {
			return err
		}
		body, err := x.c.send(ctx, "POST", "/v1/admin/reservations", url.Values{"force": {strconv.FormatBool(*force)}}, req)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		var rc wire.ReservationCreated
		if err := json.Unmarshal(body, &rc); err != nil {
			return err
		}
		fmt.Fprintf(x.stdout, "reservation %s: %d seats of %q for %s from %s (set aside %d min before); %d short\n", rc.Reservation.ID,
			rc.Reservation.Seats, rc.Reservation.Prefix, rc.Reservation.Lab, time.Unix(rc.Reservation.StartsAt, 0).UTC().Format(time.RFC3339),
			rc.Reservation.LeadMinutes, rc.Capacity.Shortfall)
		return nil
	}
}

func reservationsCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		list, body, err := get[wire.Reservations](ctx, x.c, "GET", "/v1/admin/reservations", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%-16s %-16s %-10s %6s %9s %-20s %-20s %-10s %s\n", "ID", "LAB", "PREFIX", "SEATS", "SET ASIDE", "STARTS", "ENDS", "STATE", "COVERAGE")
		for _, r := range list.Reservations {
			coverage := r.Coverage
			if r.Shortfall > 0 {
				coverage += fmt.Sprintf(" (%d short)", r.Shortfall)
			}
			fmt.Fprintf(x.stdout, "%-16s %-16q %-10q %6d %9d %-20s %-20s %-10s %s\n", r.ID, r.Lab, r.Prefix, r.Seats, r.SetAside,
				time.Unix(r.StartsAt, 0).UTC().Format(time.RFC3339), time.Unix(r.EndsAt, 0).UTC().Format(time.RFC3339), r.State, coverage)
		}
		return nil
	}
}

func cancelReservationCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		r, body, err := get[wire.Reservation](ctx, x.c, "DELETE", "/v1/admin/reservations/"+url.PathEscape(x.args[0]), nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "reservation %s is %s: its set-aside returns to the pool within a minute\n", r.ID, r.State)
		return nil
	}
}
