package awsprov

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
)

// TagInstanceIDKey is the tag IBM's AWS plugin writes, with
// AWS_TAG_InstanceID true, on each instance it launched and on its EBS
// volumes once it runs: InstanceID=<instance id> (cloud-provider-plugins,
// hostProviders/aws, AWSClient.createTagsForInstanceCreation, tagInstance
// and tagEbsVolumes, from the instance's block device mappings).
const TagInstanceIDKey = "InstanceID"

var _ provider.IDTagger = (*Provider)(nil)

// TagOwnID implements provider.IDTagger: one DescribeInstances (through the
// instance-id filter, which answers what it knows rather than failing on a
// purged id) gives each instance's volumes, then one CreateTags per
// instance names it and its volumes with InstanceID=<its id> (CreateTags
// gives every resource of a call the same tags, and each value differs).
// CreateTags is idempotent: a retry after a lost answer tags again.
// An instance the describe does not show, or for which CreateTags answers
// InvalidInstanceID.NotFound or InvalidVolume.NotFound (EC2 is eventually
// consistent: "if you run a command to modify or describe the resource
// that you just created, its ID might not have propagated throughout the
// system"), is named in a NotFound *provider.Error, to be asked again.
func (p *Provider) TagOwnID(ctx context.Context, ids []string) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	found, err := p.describeChunked(ctx, "instance-id", ids)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var missing []string
	for _, in := range found {
		if seen[in.ID] || !slices.Contains(ids, in.ID) {
			continue
		}
		seen[in.ID] = true
		res := append([]string{in.ID}, in.Volumes...)
		_, err := p.fleet.CreateTags(ctx, &ec2.CreateTagsInput{Resources: res,
			Tags: []types.Tag{{Key: aws.String(TagInstanceIDKey), Value: aws.String(in.ID)}}})
		switch code := apiCode(err); {
		case err == nil:
		case code == "InvalidInstanceID.NotFound" || code == "InvalidVolume.NotFound":
			missing = append(missing, in.ID)
		default:
			return classify("CreateTags", err)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return &provider.Error{Op: "CreateTags", Code: "InvalidInstanceID.NotFound", Kind: provider.NotFound, IDs: missing,
			Message: fmt.Sprintf("EC2 does not show %d instance(s) or their volumes yet (%s): their InstanceID tag is written later", len(missing), strings.Join(missing, ", "))}
	}
	return nil
}
