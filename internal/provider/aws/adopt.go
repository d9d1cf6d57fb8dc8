package awsprov

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
)

// createTagsBatchSize is how many resources one CreateTags call names
// (EC2 documents no hard limit; 1000 matches the other batched calls).
const createTagsBatchSize = 1000

// Retag moves every instance tagged ohfp:managed-by=old that still exists
// (any state but terminated) to ohfp:managed-by=owner, for an operator who
// changed cluster_id and adopts the old id's hosts
// (ohfpd --adopt-cluster-id). The instances are found by one filtered
// DescribeInstances, paginated, and re-tagged by CreateTags in batches. It
// returns how many instances carry owner afterwards; it is safe to run
// again after a failure.
func (p *Provider) Retag(ctx context.Context, old, owner string) (int, error) {
	live, err := p.describeFiltered(ctx, []types.Filter{
		{Name: aws.String("tag:" + provider.TagManagedBy), Values: []string{old}},
		{Name: aws.String("instance-state-name"), Values: []string{
			provider.StatePending, provider.StateRunning, provider.StateShuttingDown,
			provider.StateStopping, provider.StateStopped}},
	})
	if err != nil {
		return 0, err
	}
	ids := idsOf(live)
	tags := []types.Tag{{Key: aws.String(provider.TagManagedBy), Value: aws.String(owner)}}
	n := 0
	for batch := range slices.Chunk(ids, createTagsBatchSize) {
		if _, err := p.fleet.CreateTags(ctx, &ec2.CreateTagsInput{Resources: batch, Tags: tags}); err != nil {
			return n, classify("CreateTags", err)
		}
		n += len(batch)
		p.log.Info("instances re-tagged", "from", old, "to", owner, "instances", len(batch))
	}
	return n, nil
}
