package broker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// labSettingsTTL is how long a process allocates under one read of the lab settings
// (profiles and reservations): a change reaches new allocations within it. The read is
// one query of one small partition.
const labSettingsTTL = 5 * time.Second

// labSettingsCache is one process's view of the lab settings, timed on the wall clock for
// the reason drainCache is: it outlives a Lambda invocation, and a freeze must not keep
// it fresh.
type labSettingsCache struct {
	pool   *pool.Pool
	now    func() time.Time // nil: time.Now (tests thaw it)
	mu     sync.Mutex
	labs   pool.LabSettings
	readAt time.Time
}

func (c *labSettingsCache) get(ctx context.Context) (pool.LabSettings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Round(0)
	if c.now != nil {
		now = c.now().Round(0)
	}
	if age := now.Sub(c.readAt); c.readAt.IsZero() || age >= labSettingsTTL || age < 0 {
		labs, err := c.pool.LabSettings(ctx)
		if err != nil {
			return pool.LabSettings{}, err
		}
		c.labs, c.readAt = labs, now
	}
	return c.labs, nil
}

// labTerms are the terms one allocation is made under: the matching profiles' values,
// the configuration's where none sets one.
type labTerms struct {
	duration     time.Duration
	extension    time.Duration
	maxDuration  time.Duration
	studentLimit int
	// noSandboxMessage replaces the 409's message when set.
	noSandboxMessage string
	// profile names the most specific matching profile; "" when none matched, and then
	// the allocation stamps nothing (it follows the configuration, as before profiles).
	profile string
}

// ProfileName is how an allocation names the profile it was made under.
func ProfileName(p pool.Profile) string { return fmt.Sprintf("lab=%q prefix=%q", p.Lab, p.Prefix) }

// ProfileMatches: a profile applies to an allocation of its lab (any lab when it names
// none) whose requested name prefix starts with its prefix.
func ProfileMatches(p pool.Profile, lab, prefix string) bool {
	return (p.Lab == "" || p.Lab == lab) && strings.HasPrefix(prefix, p.Prefix)
}

// termsFor resolves an allocation's terms, field by field: the most specific matching
// profile that sets a value gives it (a lab's before a prefix's alone, then the longer
// prefix), else the configuration.
func (b *Broker) termsFor(profiles []pool.Profile, lab, prefix string) labTerms {
	t := labTerms{duration: b.labDuration, extension: b.labExtension, maxDuration: b.maxLabDuration, studentLimit: b.studentLimit}
	var matching []pool.Profile
	for _, p := range profiles {
		if ProfileMatches(p, lab, prefix) {
			matching = append(matching, p)
		}
	}
	if len(matching) == 0 {
		return t
	}
	slices.SortFunc(matching, func(x, y pool.Profile) int {
		return cmp.Or(cmp.Compare(len(y.Lab), len(x.Lab)), cmp.Compare(len(y.Prefix), len(x.Prefix)))
	})
	t.profile = ProfileName(matching[0])
	minutes := func(field func(pool.Profile) int, def time.Duration) time.Duration {
		for _, p := range matching {
			if v := field(p); v != 0 {
				return time.Duration(v) * time.Minute
			}
		}
		return def
	}
	t.duration = minutes(func(p pool.Profile) int { return p.LabDurationMinutes }, t.duration)
	t.extension = minutes(func(p pool.Profile) int { return p.ExtensionMinutes }, t.extension)
	t.maxDuration = max(minutes(func(p pool.Profile) int { return p.MaxDurationMinutes }, t.maxDuration), t.duration)
	for _, p := range matching {
		if p.StudentLimit != 0 {
			t.studentLimit = p.StudentLimit
			break
		}
	}
	for _, p := range matching {
		if p.NoSandboxMessage != "" {
			t.noSandboxMessage = p.NoSandboxMessage
			break
		}
	}
	return t
}

// stamps are what a claim under t writes on the sandbox.
func (t labTerms) stamps(allocatedAt time.Time) pool.Stamps {
	if t.profile == "" {
		return pool.Stamps{}
	}
	return pool.Stamps{
		Profile:          t.profile,
		ExtensionSeconds: int64(t.extension / time.Second),
		MaxExpiresAt:     allocatedAt.Add(t.maxDuration).Unix(),
	}
}

// NoSandboxError is ErrNoSandbox with the message the lab's profile gives it.
type NoSandboxError struct{ Message string }

func (e *NoSandboxError) Error() string        { return ErrNoSandbox.Error() + ": " + e.Message }
func (e *NoSandboxError) Is(target error) bool { return target == ErrNoSandbox }

// noSandbox is the allocation's ErrNoSandbox under t.
func (t labTerms) noSandbox() error {
	if t.noSandboxMessage == "" {
		return ErrNoSandbox
	}
	return &NoSandboxError{Message: t.noSandboxMessage}
}

// LowWater is the low-water mark of a name prefix: the value of the longest-prefix
// profile without a lab that sets one, 0 for none.
func LowWater(profiles []pool.Profile, prefix string) int {
	best, mark := -1, 0
	for _, p := range profiles {
		if p.Lab == "" && p.LowWater != 0 && strings.HasPrefix(prefix, p.Prefix) && len(p.Prefix) > best {
			best, mark = len(p.Prefix), p.LowWater
		}
	}
	return mark
}

// Profiles lists the lab profiles.
func (b *Broker) Profiles(ctx context.Context) ([]pool.Profile, error) { return b.pool.Profiles(ctx) }

// PutProfile creates or replaces a profile; it reaches new allocations within
// labSettingsTTL.
func (b *Broker) PutProfile(ctx context.Context, p pool.Profile, by pool.Actor) (pool.Profile, error) {
	return b.pool.PutProfile(ctx, p, by)
}

// DeleteProfile removes a profile; pool.ErrNoProfile when there is none.
func (b *Broker) DeleteProfile(ctx context.Context, lab, prefix string) error {
	return b.pool.DeleteProfile(ctx, lab, prefix)
}
