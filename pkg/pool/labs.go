package pool

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// LabSettings are the profiles and reservations, read together: the allocation path reads
// them with one query every few seconds.
type LabSettings struct {
	Profiles     []Profile
	Reservations []Reservation
}

// LabSettings reads the labs partition whole (one query: a few hundred items fit a
// page), eventually consistent: a change reaches the readers within a second.
func (p *Pool) LabSettings(ctx context.Context) (LabSettings, error) {
	var out LabSettings
	for item, err := range p.itemsUnder(ctx, labsPK, "", &dynamodb.QueryInput{}) {
		if err != nil {
			return LabSettings{}, err
		}
		var k struct{ SK string }
		if err := attributevalue.UnmarshalMap(item, &k); err != nil {
			return LabSettings{}, err
		}
		switch {
		case strings.HasPrefix(k.SK, prefixProfileEntry):
			var pr Profile
			if err := attributevalue.UnmarshalMap(item, &pr); err != nil {
				return LabSettings{}, err
			}
			out.Profiles = append(out.Profiles, pr)
		case strings.HasPrefix(k.SK, prefixReservationEntry):
			var r Reservation
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return LabSettings{}, err
			}
			out.Reservations = append(out.Reservations, r)
		}
	}
	return out, nil
}
