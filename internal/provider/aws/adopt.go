package awsprov

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
		{Name: aws.String("instance-state-name"), Values: stateNames(
			provider.StatePending, provider.StateRunning, provider.StateShuttingDown,
			provider.StateStopping, provider.StateStopped)},
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

// Tag implements provider.Provider: CreateTags in batches, every instance
// of a call getting every tag. EC2 refuses a whole CreateTags call for one
// id it does not know (InvalidInstanceID.NotFound): those ids are dropped
// and the rest tagged, and a NotFound *provider.Error names them (not
// visible yet, or long gone: the caller asks again later).
func (p *Provider) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	keys := slices.Sorted(maps.Keys(tags))
	ts := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	var missing []string
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), createTagsBatchSize) {
		dropped, err := p.withoutMissingIDs(ctx, batch, instanceIDPattern,
			[]string{"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"},
			func(ids []string) error {
				_, err := p.fleet.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: ts})
				return err
			})
		missing = append(missing, dropped...)
		if err != nil {
			return classify("CreateTags", err)
		}
	}
	if len(missing) > 0 {
		return &provider.Error{Op: "CreateTags", Code: "InvalidInstanceID.NotFound", Kind: provider.NotFound, IDs: missing,
			Message: fmt.Sprintf("EC2 does not know %d instance(s) (%s): not visible yet, or long gone", len(missing), strings.Join(missing, ", "))}
	}
	return nil
}

// Find implements provider.Provider: one filtered, paginated
// DescribeInstances per criterion of q (EC2 ANDs filters of different
// names), each with the owner's tag, within EC2's filter-value limit.
func (p *Provider) Find(ctx context.Context, owner string, q provider.Query) ([]provider.Instance, error) {
	owned := []types.Filter{{Name: aws.String("tag:" + provider.TagManagedBy), Values: []string{owner}}}
	return p.describeEach(ctx, owned, []filterValues{
		{"instance-id", q.IDs},
		{"private-dns-name", q.Names},
		{"tag:" + provider.TagRequestID, q.RequestIDs},
		{"tag:" + provider.TagReturnID, q.ReturnIDs},
	})
}
