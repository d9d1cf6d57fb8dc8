package awsprov

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ohfp/ohfp/internal/provider"
)

// Fleets another plugin created (IBM's, taken over by ohfpd
// --take-over-ibm): see provider.ForeignFleets.

var _ provider.ForeignFleets = (*Provider)(nil)

// FleetInstances lists a fleet's active instances: DescribeFleetInstances
// or DescribeSpotFleetInstances (API Reference: "Describes the running
// instances for the specified EC2 Fleet" / "the running instances for the
// specified Spot Fleet"), paginated. An unknown handle: none.
func (p *Provider) FleetInstances(ctx context.Context, handle string) ([]string, error) {
	kind, id := handleKind(handle)
	var out []string
	var token *string
	for {
		provider.BeforePage(ctx)
		switch kind {
		case kindEC2Fleet:
			res, err := p.fleet.DescribeFleetInstances(ctx, &ec2.DescribeFleetInstancesInput{FleetId: aws.String(id), NextToken: token})
			switch code := apiCode(err); {
			case code == "InvalidFleetId.NotFound", code == "InvalidFleetId.Malformed":
				return nil, nil
			case err != nil:
				return nil, classify("DescribeFleetInstances", err)
			}
			for _, a := range res.ActiveInstances {
				out = append(out, aws.ToString(a.InstanceId))
			}
			token = res.NextToken
		case kindSpotFleet:
			res, err := p.fleet.DescribeSpotFleetInstances(ctx, &ec2.DescribeSpotFleetInstancesInput{SpotFleetRequestId: aws.String(id), NextToken: token})
			switch code := apiCode(err); {
			case code == "InvalidSpotFleetRequestId.NotFound", code == "InvalidSpotFleetRequestId.Malformed":
				return nil, nil
			case err != nil:
				return nil, classify("DescribeSpotFleetInstances", err)
			}
			for _, a := range res.ActiveInstances {
				out = append(out, aws.ToString(a.InstanceId))
			}
			token = res.NextToken
		default:
			return nil, &provider.Error{Op: "FleetInstances", Kind: provider.Fatal,
				Message: fmt.Sprintf("%q is not an EC2 Fleet or Spot Fleet request id (fleet-..., sfr-...)", handle)}
		}
		if aws.ToString(token) == "" {
			return out, nil
		}
	}
}

// Abandon deletes an EC2 Fleet or cancels a Spot Fleet request with
// TerminateInstances false (API Reference, DeleteFleets / Cancel
// SpotFleetRequests: "Indicates whether to terminate the associated
// instances"; an instant fleet cannot be deleted without terminating and
// is left as it is: it launches nothing more). Its launch templates are
// not ohfp's and stay.
func (p *Provider) Abandon(ctx context.Context, handle string) error {
	kind, id := handleKind(handle)
	unlock := p.handles.lock(handle)
	defer unlock()
	switch kind {
	case kindEC2Fleet:
		return p.deleteFleet(ctx, id, false)
	case kindSpotFleet:
		return p.cancelSpotFleet(ctx, id, false)
	}
	return badHandle("Abandon", handle)
}
