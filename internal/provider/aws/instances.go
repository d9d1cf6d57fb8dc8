package awsprov

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/provider"
)

// Batch sizes of the describe and terminate calls.
const (
	describePageSize   = 1000 // DescribeInstances MaxResults
	terminateBatchSize = 1000 // TerminateInstances accepts up to 1000 ids
	spotBatchSize      = 200
)

// allStates makes List's filter explicit: every state EC2 still shows.
var allStates = stateNames(
	provider.StatePending, provider.StateRunning, provider.StateShuttingDown,
	provider.StateTerminated, provider.StateStopping, provider.StateStopped,
)

// stateNames spells states as an instance-state-name filter's values.
func stateNames(states ...provider.State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// List returns every instance tagged ohfp:managed-by=owner in any state,
// through a filtered DescribeInstances paginated 1000 at a time (10,000
// instances take 10 calls).
func (p *Provider) List(ctx context.Context, owner string) ([]provider.Instance, error) {
	return p.describeFiltered(ctx, []types.Filter{
		{Name: aws.String("tag:" + provider.TagManagedBy), Values: []string{owner}},
		{Name: aws.String("instance-state-name"), Values: allStates},
	})
}

// filterValuesMax is how many filter values EC2 takes in one call, over all
// its filters together; one more and the call fails with
// FilterLimitExceeded.
const filterValuesMax = 200

// Describe implements provider.Provider: the owner's instances among ids
// and those tagged with one of requestIDs, by filters (an unknown id is
// simply absent, never an error), each call within EC2's filter-value
// limit, paginated.
func (p *Provider) Describe(ctx context.Context, owner string, ids, requestIDs []string) ([]provider.Instance, error) {
	var owned []types.Filter
	if owner != "" {
		owned = append(owned, types.Filter{Name: aws.String("tag:" + provider.TagManagedBy), Values: []string{owner}})
	}
	return p.describeEach(ctx, owned, []filterValues{{"instance-id", ids}, {"tag:" + provider.TagRequestID, requestIDs}})
}

// filterValues is one DescribeInstances filter and its values.
type filterValues struct {
	filter string
	values []string
}

// describeEach describes, for each filter with values, the instances
// matching it and owned (paginated, chunked within EC2's filter-value
// limit), each instance once.
func (p *Provider) describeEach(ctx context.Context, owned []types.Filter, fs []filterValues) ([]provider.Instance, error) {
	var out []provider.Instance
	seen := map[string]bool{}
	for _, f := range fs {
		if len(f.values) == 0 {
			continue
		}
		got, err := p.describeChunked(ctx, f.filter, f.values, owned...)
		if err != nil {
			return nil, err
		}
		for _, in := range got {
			if !seen[in.ID] {
				seen[in.ID] = true
				out = append(out, in)
			}
		}
	}
	return out, nil
}

// describeChunked describes the instances that match every filter of fixed
// and one of values for the filter name, in as many calls as it takes for
// each to hold at most filterValuesMax filter values in all (200 ids and a
// one-value owner filter would be 201: refused by EC2).
func (p *Provider) describeChunked(ctx context.Context, name string, values []string, fixed ...types.Filter) ([]provider.Instance, error) {
	room := filterValuesMax
	for _, f := range fixed {
		room -= len(f.Values)
	}
	if room <= 0 {
		return nil, fmt.Errorf("describing by %s: the other filters already hold %s", name, english.Plural(filterValuesMax-room, "value"))
	}
	var out []provider.Instance
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(values))), room) {
		filters := append(slices.Clone(fixed), types.Filter{Name: aws.String(name), Values: batch})
		got, err := p.describeFiltered(ctx, filters)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// describeFiltered describes the instances filters match, paginated.
func (p *Provider) describeFiltered(ctx context.Context, filters []types.Filter) ([]provider.Instance, error) {
	return p.describeAll(ctx, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(describePageSize)})
}

// toInstance maps an EC2 instance.
func toInstance(i types.Instance) provider.Instance {
	out := provider.Instance{
		ID:            aws.ToString(i.InstanceId),
		InstanceType:  string(i.InstanceType),
		SubnetID:      aws.ToString(i.SubnetId),
		PrivateIP:     aws.ToString(i.PrivateIpAddress),
		PublicIP:      aws.ToString(i.PublicIpAddress),
		PrivateDNS:    aws.ToString(i.PrivateDnsName),
		LaunchTime:    aws.ToTime(i.LaunchTime),
		Spot:          i.InstanceLifecycle == types.InstanceLifecycleTypeSpot,
		SpotRequestID: aws.ToString(i.SpotInstanceRequestId),
		Tags:          make(map[string]string, len(i.Tags)),
	}
	if i.State != nil {
		out.State = provider.State(i.State.Name)
	}
	if i.Placement != nil {
		out.AZ = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.StateReason != nil {
		out.StateReason = aws.ToString(i.StateReason.Code)
	}
	for _, t := range i.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, b := range i.BlockDeviceMappings {
		if b.Ebs != nil && aws.ToString(b.Ebs.VolumeId) != "" {
			out.Volumes = append(out.Volumes, aws.ToString(b.Ebs.VolumeId))
		}
	}
	out.Handle = handleFromTags(out.Tags)
	return out
}

// Terminate terminates ids in batches of up to 1000. Ids EC2 does not know
// (InvalidInstanceID.NotFound or .Malformed) are dropped and the rest of
// their batch terminated; a failing batch does not stop the others. The
// first error is returned; when every batch went through but EC2 did not
// know some ids, a NotFound *provider.Error names them: EC2 is eventually
// consistent, and a just-launched instance answering NotFound may well be
// running (EC2 Developer Guide, "Eventual consistency in the Amazon EC2
// API"), so it is not reported as terminated.
func (p *Provider) Terminate(ctx context.Context, ids []string) error {
	var first error
	var missing []string
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), terminateBatchSize) {
		dropped, err := p.withoutMissingIDs(ctx, batch, instanceIDPattern,
			[]string{"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"},
			func(ids []string) error {
				_, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
				return err
			})
		missing = append(missing, dropped...)
		if err != nil {
			err = classify("TerminateInstances", err)
			p.log.Warn("TerminateInstances failed", "instances", len(batch), "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		p.log.Info("TerminateInstances", "instances", len(batch)-len(dropped))
	}
	if first == nil && len(missing) > 0 {
		p.log.Info("TerminateInstances: EC2 does not know these instances (yet?); not taken as terminated", "instances", missing)
		return &provider.Error{Op: "TerminateInstances", Code: "InvalidInstanceID.NotFound", Kind: provider.NotFound, IDs: missing,
			Message: fmt.Sprintf("EC2 does not know %d instance(s) (%s): not visible yet, or long gone; confirm with a later describe", len(missing), strings.Join(missing, ", "))}
	}
	return first
}

var (
	instanceIDPattern = regexp.MustCompile(`\bi-[0-9a-zA-Z]+\b`)
	spotIDPattern     = regexp.MustCompile(`\bsir-[0-9a-zA-Z]+\b`)
)

// withoutMissing calls fn(ids). When EC2 answers one of notFound codes, it
// drops the ids EC2's message names (as EC2 spells them: "The instance IDs
// 'i-1, i-2' do not exist") and calls again with the rest; when the message
// names none of them, it falls back to one id a call, skipping the unknown
// ones.
func (p *Provider) withoutMissing(ctx context.Context, ids []string, pattern *regexp.Regexp,
	notFound []string, fn func([]string) error) error {
	_, err := p.withoutMissingIDs(ctx, ids, pattern, notFound, fn)
	return err
}

// withoutMissingIDs is withoutMissing that also returns the ids it dropped.
func (p *Provider) withoutMissingIDs(ctx context.Context, ids []string, pattern *regexp.Regexp,
	notFound []string, fn func([]string) error) (dropped []string, _ error) {
	for len(ids) > 0 {
		err := fn(ids)
		if err == nil || !slices.Contains(notFound, apiCode(err)) {
			return dropped, err
		}
		missing := pattern.FindAllString(apiMessage(err), -1)
		rest := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(missing, id) })
		if len(rest) == len(ids) {
			p.log.Debug("unknown ids not named by EC2; going one by one", "ids", len(ids), "err", err)
			for _, id := range ids {
				if err := fn([]string{id}); err != nil {
					if !slices.Contains(notFound, apiCode(err)) {
						return dropped, err
					}
					dropped = append(dropped, id)
				}
			}
			return dropped, nil
		}
		p.log.Debug("dropping ids EC2 does not know", "ids", missing)
		for _, id := range ids {
			if !slices.Contains(rest, id) {
				dropped = append(dropped, id)
			}
		}
		ids = rest
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}

// InstanceType describes an instance type through DescribeInstanceTypes,
// cached for the life of the provider.
func (p *Provider) InstanceType(ctx context.Context, name string) (provider.InstanceTypeInfo, error) {
	p.mu.Lock()
	info, ok := p.typeCache[name]
	p.mu.Unlock()
	if ok {
		return info, nil
	}
	out, err := p.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(name)}})
	if err != nil {
		return provider.InstanceTypeInfo{}, classify("DescribeInstanceTypes", err)
	}
	found := false
	for _, it := range out.InstanceTypes {
		if string(it.InstanceType) != name {
			continue
		}
		found = true
		info = provider.InstanceTypeInfo{Name: name}
		if v := it.VCpuInfo; v != nil {
			info.VCPUs, info.Cores = int(aws.ToInt32(v.DefaultVCpus)), int(aws.ToInt32(v.DefaultCores))
		}
		if m := it.MemoryInfo; m != nil {
			info.MemoryMiB = int(aws.ToInt64(m.SizeInMiB))
		}
		if pi := it.ProcessorInfo; pi != nil && len(pi.SupportedArchitectures) > 0 {
			info.Arch = string(pi.SupportedArchitectures[0])
			for _, a := range pi.SupportedArchitectures {
				if a == types.ArchitectureTypeX8664 || a == types.ArchitectureTypeArm64 {
					info.Arch = string(a)
					break
				}
			}
		}
	}
	if !found {
		return provider.InstanceTypeInfo{}, &provider.Error{Op: "DescribeInstanceTypes", Code: "InvalidInstanceType", Kind: provider.Fatal,
			Message: fmt.Sprintf("instance type %s is not offered in this region", name)}
	}
	p.mu.Lock()
	p.typeCache[name] = info
	p.mu.Unlock()
	return info, nil
}

// SpotRequests describes Spot instance requests in batches of 200 ids,
// through the spot-instance-request-id filter (200 filter values a call at
// most): a request EC2 does not show, because it is too young (eventual
// consistency) or long gone, is left out of the answer instead of failing
// the call with InvalidSpotInstanceRequestID.NotFound, as SpotInstanceRequestId.N
// would.
func (p *Provider) SpotRequests(ctx context.Context, ids []string) ([]provider.SpotRequest, error) {
	var out []provider.SpotRequest
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), spotBatchSize) {
		err := p.withoutMissing(ctx, batch, spotIDPattern,
			[]string{"InvalidSpotInstanceRequestID.NotFound", "InvalidSpotInstanceRequestID.Malformed"},
			func(ids []string) error {
				in := &ec2.DescribeSpotInstanceRequestsInput{Filters: []types.Filter{
					{Name: aws.String("spot-instance-request-id"), Values: ids}}}
				for {
					page, err := p.ec2.DescribeSpotInstanceRequests(ctx, in)
					if err != nil {
						return err
					}
					for _, r := range page.SpotInstanceRequests {
						out = append(out, toSpotRequest(r))
					}
					if aws.ToString(page.NextToken) == "" {
						return nil
					}
					in.NextToken = page.NextToken
				}
			})
		if err != nil {
			return nil, classify("DescribeSpotInstanceRequests", err)
		}
	}
	return out, nil
}

// toSpotRequest maps an EC2 Spot instance request.
func toSpotRequest(r types.SpotInstanceRequest) provider.SpotRequest {
	out := provider.SpotRequest{
		ID:         aws.ToString(r.SpotInstanceRequestId),
		InstanceID: aws.ToString(r.InstanceId),
		State:      string(r.State),
	}
	if s := r.Status; s != nil {
		out.StatusCode = aws.ToString(s.Code)
		out.StatusUpdate = aws.ToTime(s.UpdateTime)
		out.Interrupted = spotInterruptionCodes[out.StatusCode]
	}
	return out
}

// spotInterruptionCodes are the Spot request status codes that mean EC2
// is reclaiming, or has reclaimed, the instance (EC2 User Guide, "Spot
// request status"): a terminate-on-interruption instance shows
// instance-terminated-no-capacity at once, while it runs out its
// two-minute notice (never marked-for-termination); stop and hibernate
// show marked-for-stop, then instance-stopped-no-capacity. marked-for-stop
// also shows while a user stops a persistent Spot Instance, which ohfp
// never does: the machine is going either way.
var spotInterruptionCodes = map[string]bool{
	"instance-terminated-no-capacity":             true,
	"marked-for-termination":                      true,
	"marked-for-stop":                             true,
	"instance-stopped-no-capacity":                true,
	"instance-terminated-by-price":                true,
	"instance-stopped-by-price":                   true,
	"instance-terminated-launch-group-constraint": true,
}
