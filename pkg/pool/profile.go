package pool

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/printable"
)

// Profile is the terms a lab's allocations are made under (docs/architecture.md §5, "Lab
// profiles"), keyed by the lab (the track ID the clients send) and/or a name prefix. A
// zero field is unset: the next matching profile's value applies, and without one the
// configuration's. An allocation stamps what it was made under (Claim), so a later change
// never shortens a running lab.
type Profile struct {
	Lab    string `dynamodbav:"lab"`
	Prefix string `dynamodbav:"prefix"`
	// LabDurationMinutes sets expires_at at allocation.
	LabDurationMinutes int `dynamodbav:"lab_duration_minutes,omitempty"`
	// ExtensionMinutes is one extension's step; MaxDurationMinutes caps expires_at after
	// allocated_at.
	ExtensionMinutes   int `dynamodbav:"extension_minutes,omitempty"`
	MaxDurationMinutes int `dynamodbav:"max_duration_minutes,omitempty"`
	// StudentLimit is how many live allocations a student may hold when it allocates for
	// this lab.
	StudentLimit int `dynamodbav:"student_limit,omitempty"`
	// LowWater is the number of available sandboxes under which the lab's prefix is low.
	LowWater int `dynamodbav:"low_water,omitempty"`
	// NoSandboxMessage is the message of the lab's 409 NO_SANDBOXES_AVAILABLE.
	NoSandboxMessage string `dynamodbav:"no_sandbox_message,omitempty"`

	UpdatedAt int64  `dynamodbav:"updated_at"`
	UpdatedBy string `dynamodbav:"updated_by,omitempty"`
}

// Bounds of a profile's values. A lab runs at least ten minutes and at most the longest
// configuration allows (MAX_LAB_DURATION_HOURS' bound, 90 days).
const (
	MinProfileMinutes      = 10
	MaxProfileMinutes      = 90 * 24 * 60
	MaxProfileStudentLimit = 20 // the owner-slot bound (docs/architecture.md §5)
	MaxProfileLowWater     = 100_000
	MaxProfileMessage      = 200
	MaxProfileKey          = 128 // lab and prefix, as the headers bound them
)

// Validate names the first value out of bounds, as configuration does.
func (p Profile) Validate() error {
	minutes := func(name string, v int) error {
		if v != 0 && (v < MinProfileMinutes || v > MaxProfileMinutes) {
			return fmt.Errorf("%s must be from %d to %d (minutes), or 0 for the default", name, MinProfileMinutes, MaxProfileMinutes)
		}
		return nil
	}
	switch {
	case p.Lab == "" && p.Prefix == "":
		return errors.New("a profile needs a lab, a prefix or both")
	case !printable.Text(p.Lab, MaxProfileKey):
		return fmt.Errorf("lab must be at most %d printable characters", MaxProfileKey)
	case !printable.Text(p.Prefix, MaxProfileKey):
		return fmt.Errorf("prefix must be at most %d printable characters", MaxProfileKey)
	case !printable.Text(p.NoSandboxMessage, MaxProfileMessage):
		return fmt.Errorf("no_sandbox_message must be at most %d printable characters", MaxProfileMessage)
	case p.StudentLimit < 0 || p.StudentLimit > MaxProfileStudentLimit:
		return fmt.Errorf("student_limit must be from 1 to %d, or 0 for the default", MaxProfileStudentLimit)
	case p.LowWater < 0 || p.LowWater > MaxProfileLowWater:
		return fmt.Errorf("low_water must be from 1 to %d, or 0 for none", MaxProfileLowWater)
	case p.MaxDurationMinutes != 0 && p.MaxDurationMinutes < p.LabDurationMinutes:
		return fmt.Errorf("max_duration_minutes (%d) must not be shorter than lab_duration_minutes (%d)", p.MaxDurationMinutes, p.LabDurationMinutes)
	}
	for _, err := range []error{
		minutes("lab_duration_minutes", p.LabDurationMinutes),
		minutes("extension_minutes", p.ExtensionMinutes),
		minutes("max_duration_minutes", p.MaxDurationMinutes),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// labsPK is the partition of the lab settings: profiles and reservations. The allocation
// path reads it whole with one query (LabSettings).
const (
	labsPK             = "LABS"
	prefixProfileEntry = "PROFILE#"
)

// profileSK is injective: lab and prefix are quoted, so a '#' in either cannot make two
// profiles share a key.
func profileSK(lab, prefix string) string {
	return prefixProfileEntry + strconv.Quote(lab) + "#" + strconv.Quote(prefix)
}

// PutProfile creates or replaces the profile of (p.Lab, p.Prefix).
func (p *Pool) PutProfile(ctx context.Context, pr Profile, by Actor) (Profile, error) {
	if err := pr.Validate(); err != nil {
		return Profile{}, err
	}
	pr.UpdatedAt, pr.UpdatedBy = p.now().Unix(), by.Name
	item, err := marshalItem(pr, labsPK, profileSK(pr.Lab, pr.Prefix))
	if err != nil {
		return Profile{}, err
	}
	t := p.newTx("put profile", labsPK, expect{})
	t.put("", p.table, item, "")
	return pr, p.run(ctx, t)
}

// ErrNoProfile: no profile has that lab and prefix.
var ErrNoProfile = errors.New("pool: no such profile")

// DeleteProfile removes the profile of (lab, prefix); ErrNoProfile when there is none.
// Allocations made under it keep the terms they stamped.
func (p *Pool) DeleteProfile(ctx context.Context, lab, prefix string) error {
	var e expr
	_, err := p.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(p.table),
		Key:                      key(labsPK, profileSK(lab, prefix)),
		ConditionExpression:      aws.String(e.use("attribute_exists(#PK)")),
		ExpressionAttributeNames: e.names,
	})
	if _, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return ErrNoProfile
	}
	if err != nil {
		return wrapAPIError("delete profile", err)
	}
	return nil
}

// Profiles lists the profiles, strongly consistent.
func (p *Pool) Profiles(ctx context.Context) ([]Profile, error) {
	return collect[Profile](p.itemsUnder(ctx, labsPK, prefixProfileEntry, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}))
}

// marshalItem is v as an item under (pk, sk).
func marshalItem(v any, pk, sk string) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, err
	}
	item[AttrPK], item[AttrSK] = av(pk), av(sk)
	return item, nil
}

// labProfilesAreValid guarantees that every lab profile is within bounds and stored under
// its own key, so the allocation path resolves what an operator saved.
func (c *census) labProfilesAreValid() []error {
	var v violations
	for _, p := range c.profiles {
		if err := p.v.Validate(); err != nil || p.sk != profileSK(p.v.Lab, p.v.Prefix) {
			v.add("profile %s / %s: lab %q prefix %q, %v", p.pk, p.sk, p.v.Lab, p.v.Prefix, err)
		}
	}
	return v
}
