package awsprov

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// tag_instance_id through every provider API against the simulated
// region: TagOwnID writes InstanceID=<id> on each instance and on every
// volume its block device mappings name, as IBM's plugin does.
func TestSimTagOwnIDEveryAPI(t *testing.T) {
	for _, api := range []string{template.APIRunInstances, template.APIEC2Fleet, template.APISpotFleet, template.APIASG} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, clk := newSim(t, Settings{RetryAttempts: 0})
			var subnets []string
			for _, s := range r.Subnets() {
				subnets = append(subnets, s)
			}
			sort.Strings(subnets)
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, SubnetIDs: subnets[:1], ProviderAPI: api,
				PriceType: template.PriceOnDemand, VMType: "c5.large", RootVolumeSize: 20,
				FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"}
			if api == template.APIEC2Fleet {
				tpl.FleetType = template.FleetInstant
			}
			if api == template.APISpotFleet {
				tpl.PriceType = template.PriceSpot
			}
			req := "req-" + api
			if _, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req + "-t", Template: tpl, Units: 2, Tags: simTags("cluster-1", req)}); err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 3)
			got := live(t, p, "cluster-1", req)
			if len(got) != 2 {
				t.Fatalf("%d instances", len(got))
			}
			if err := p.TagOwnID(ctx, ids(got)); err != nil {
				t.Fatal(err)
			}
			c := ec2.NewFromConfig(p.Config())
			for _, in := range got {
				di, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{in.ID}})
				if err != nil {
					t.Fatal(err)
				}
				inst := di.Reservations[0].Instances[0]
				if tagOf(inst.Tags, TagInstanceIDKey) != in.ID {
					t.Errorf("%s: instance tags %v", in.ID, inst.Tags)
				}
				dv, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{in.ID}}}})
				if err != nil || len(dv.Volumes) == 0 {
					t.Fatalf("%s: volumes %+v %v", in.ID, dv, err)
				}
				for _, v := range dv.Volumes {
					if tagOf(v.Tags, TagInstanceIDKey) != in.ID {
						t.Errorf("%s: volume %s tags %v", in.ID, aws.ToString(v.VolumeId), v.Tags)
					}
				}
			}
		})
	}
}

// An instance EC2 does not show yet (eventual consistency) is named in a
// NotFound error, to be asked again; the others are tagged.
func TestSimTagOwnIDNotVisibleYet(t *testing.T) {
	ctx := context.Background()
	p, _, clk := newSimWith(t, Settings{RetryAttempts: 0}, awssim.Options{Consistency: time.Hour})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: template.APIRunInstances, PriceType: template.PriceOnDemand, VMType: "c5.large"}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1-t", Template: tpl, Units: 1, Tags: simTags("cluster-1", "req-1")})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Instances[0].ID
	err = p.TagOwnID(ctx, []string{id})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.NotFound || len(pe.IDs) != 1 || pe.IDs[0] != id {
		t.Fatalf("TagOwnID before the instance is visible: %v", err)
	}
	clk.Advance(2 * time.Hour)
	if err := p.TagOwnID(ctx, []string{id}); err != nil {
		t.Fatalf("once visible: %v", err)
	}
}

func tagOf(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
