package awsprov

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/clock"
)

// callLog records the order of calls across the fakes.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *callLog) count(op string) int {
	n := 0
	for _, c := range l.list() {
		if c == op {
			n++
		}
	}
	return n
}

func (l *callLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = nil
}

// loggedEC2 is fakeEC2 with DescribeInstances by instance-id filter and a
// shared call log.
type loggedEC2 struct {
	*fakeEC2
	log *callLog
}

func (e loggedEC2) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, o ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	e.log.add("TerminateInstances")
	return e.fakeEC2.TerminateInstances(ctx, in, o...)
}

func (e loggedEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	e.log.add("DescribeInstances")
	var idf, rest []types.Filter
	for _, f := range in.Filters {
		if aws.ToString(f.Name) == "instance-id" {
			idf = append(idf, f)
		} else {
			rest = append(rest, f)
		}
	}
	if len(idf) == 0 {
		return e.fakeEC2.DescribeInstances(ctx, in, o...)
	}
	cp := *in
	cp.Filters = rest
	out, err := e.fakeEC2.DescribeInstances(ctx, &cp, o...)
	if err != nil {
		return nil, err
	}
	for i := range out.Reservations {
		out.Reservations[i].Instances = slices.DeleteFunc(out.Reservations[i].Instances, func(x types.Instance) bool {
			return !slices.Contains(idf[0].Values, aws.ToString(x.InstanceId))
		})
	}
	return out, nil
}

// addFleetInstance adds an instance of type it, tagged with tags, to the fake.
func (f *fakeEC2) addFleetInstance(it string, tags map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("i-%017x", f.nextID)
	f.instances = append(f.instances, types.Instance{
		InstanceId: aws.String(id), InstanceType: types.InstanceType(it),
		State: &types.InstanceState{Name: types.InstanceStateNameRunning}, Tags: ec2Tags(tags),
		PrivateIpAddress: aws.String("10.0.0.1"),
	})
	return id
}

// fakeFleet is an in-memory fleetAPI: fleets, Spot Fleet requests and
// launch templates as given, calls recorded.
type fakeFleet struct {
	mu  sync.Mutex
	log *callLog
	ec2 *fakeEC2

	fleets map[string]types.FleetData
	sfrs   map[string]types.SpotFleetRequestConfig
	lts    map[string]types.LaunchTemplate // by name
	userLT map[string]types.ResponseLaunchTemplateData

	createFleet     []*ec2.CreateFleetInput
	createFleetOut  *ec2.CreateFleetOutput
	requestSpot     []*ec2.RequestSpotFleetInput
	createLT        []*ec2.CreateLaunchTemplateInput
	describeFleets  [][]string
	describeSFRs    [][]string
	modifyFleet     []*ec2.ModifyFleetInput
	modifySFR       []*ec2.ModifySpotFleetRequestInput
	deleteFleets    []*ec2.DeleteFleetsInput
	cancelSFRs      []*ec2.CancelSpotFleetRequestsInput
	deletedLTs      []string
	createTags      []*ec2.CreateTagsInput
	sfrHistoryCalls int
	nextID          int
}

func newFakeFleet(log *callLog, e *fakeEC2) *fakeFleet {
	return &fakeFleet{log: log, ec2: e, fleets: map[string]types.FleetData{}, sfrs: map[string]types.SpotFleetRequestConfig{},
		lts: map[string]types.LaunchTemplate{}, userLT: map[string]types.ResponseLaunchTemplateData{}}
}

func notFound(code, id string) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf("The ID '%s' does not exist", id)}
}

func (f *fakeFleet) CreateFleet(_ context.Context, in *ec2.CreateFleetInput, _ ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	f.log.add("CreateFleet")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createFleet = append(f.createFleet, in)
	if f.createFleetOut != nil {
		return f.createFleetOut, nil
	}
	f.nextID++
	id := fmt.Sprintf("fleet-%08d-0000-0000-0000-000000000000", f.nextID)
	f.fleets[id] = types.FleetData{FleetId: aws.String(id), Type: in.Type, FleetState: types.FleetStateCodeActive,
		TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: in.TargetCapacitySpecification.TotalTargetCapacity},
		Tags:                        in.TagSpecifications[0].Tags}
	return &ec2.CreateFleetOutput{FleetId: aws.String(id)}, nil
}

func (f *fakeFleet) DescribeFleets(_ context.Context, in *ec2.DescribeFleetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeFleetsOutput, error) {
	f.log.add("DescribeFleets")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describeFleets = append(f.describeFleets, slices.Clone(in.FleetIds))
	out := &ec2.DescribeFleetsOutput{}
	for _, id := range in.FleetIds {
		fd, ok := f.fleets[id]
		if !ok {
			return nil, notFound("InvalidFleetId.NotFound", id)
		}
		out.Fleets = append(out.Fleets, fd)
	}
	return out, nil
}

func (f *fakeFleet) DescribeFleetHistory(_ context.Context, in *ec2.DescribeFleetHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeFleetHistoryOutput, error) {
	f.log.add("DescribeFleetHistory")
	return &ec2.DescribeFleetHistoryOutput{HistoryRecords: []types.HistoryRecordEntry{{EventType: types.FleetEventTypeServiceError,
		EventInformation: &types.EventInformation{EventSubType: aws.String("InsufficientInstanceCapacity"), EventDescription: aws.String("no c5.large")}}}}, nil
}

func (f *fakeFleet) ModifyFleet(_ context.Context, in *ec2.ModifyFleetInput, _ ...func(*ec2.Options)) (*ec2.ModifyFleetOutput, error) {
	f.log.add("ModifyFleet")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modifyFleet = append(f.modifyFleet, in)
	fd := f.fleets[aws.ToString(in.FleetId)]
	tcs := *fd.TargetCapacitySpecification
	tcs.TotalTargetCapacity = in.TargetCapacitySpecification.TotalTargetCapacity
	fd.TargetCapacitySpecification = &tcs
	f.fleets[aws.ToString(in.FleetId)] = fd
	return &ec2.ModifyFleetOutput{Return: aws.Bool(true)}, nil
}

func (f *fakeFleet) DeleteFleets(_ context.Context, in *ec2.DeleteFleetsInput, _ ...func(*ec2.Options)) (*ec2.DeleteFleetsOutput, error) {
	f.log.add("DeleteFleets")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteFleets = append(f.deleteFleets, in)
	out := &ec2.DeleteFleetsOutput{}
	for _, id := range in.FleetIds {
		fd, ok := f.fleets[id]
		if !ok {
			out.UnsuccessfulFleetDeletions = append(out.UnsuccessfulFleetDeletions, types.DeleteFleetErrorItem{FleetId: aws.String(id),
				Error: &types.DeleteFleetError{Code: types.DeleteFleetErrorCodeFleetIdDoesNotExist}})
			continue
		}
		fd.FleetState = types.FleetStateCodeDeletedRunning
		if aws.ToBool(in.TerminateInstances) {
			fd.FleetState = types.FleetStateCodeDeletedTerminatingInstances
		}
		f.fleets[id] = fd
	}
	return out, nil
}

func (f *fakeFleet) RequestSpotFleet(_ context.Context, in *ec2.RequestSpotFleetInput, _ ...func(*ec2.Options)) (*ec2.RequestSpotFleetOutput, error) {
	f.log.add("RequestSpotFleet")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requestSpot = append(f.requestSpot, in)
	f.nextID++
	id := fmt.Sprintf("sfr-%08d-0000-0000-0000-000000000000", f.nextID)
	cfg := *in.SpotFleetRequestConfig
	f.sfrs[id] = types.SpotFleetRequestConfig{SpotFleetRequestId: aws.String(id), SpotFleetRequestState: types.BatchStateActive,
		SpotFleetRequestConfig: &cfg, Tags: cfg.TagSpecifications[0].Tags}
	return &ec2.RequestSpotFleetOutput{SpotFleetRequestId: aws.String(id)}, nil
}

func (f *fakeFleet) DescribeSpotFleetRequests(_ context.Context, in *ec2.DescribeSpotFleetRequestsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotFleetRequestsOutput, error) {
	f.log.add("DescribeSpotFleetRequests")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describeSFRs = append(f.describeSFRs, slices.Clone(in.SpotFleetRequestIds))
	out := &ec2.DescribeSpotFleetRequestsOutput{}
	for _, id := range in.SpotFleetRequestIds {
		r, ok := f.sfrs[id]
		if !ok {
			return nil, notFound("InvalidSpotFleetRequestId.NotFound", id)
		}
		out.SpotFleetRequestConfigs = append(out.SpotFleetRequestConfigs, r)
	}
	return out, nil
}

func (f *fakeFleet) DescribeSpotFleetRequestHistory(_ context.Context, in *ec2.DescribeSpotFleetRequestHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotFleetRequestHistoryOutput, error) {
	f.log.add("DescribeSpotFleetRequestHistory")
	f.mu.Lock()
	f.sfrHistoryCalls++
	f.mu.Unlock()
	return &ec2.DescribeSpotFleetRequestHistoryOutput{HistoryRecords: []types.HistoryRecord{{EventType: types.EventTypeError,
		EventInformation: &types.EventInformation{EventSubType: aws.String("launchSpecUnusable"), EventDescription: aws.String("price too low")}}}}, nil
}

func (f *fakeFleet) ModifySpotFleetRequest(_ context.Context, in *ec2.ModifySpotFleetRequestInput, _ ...func(*ec2.Options)) (*ec2.ModifySpotFleetRequestOutput, error) {
	f.log.add("ModifySpotFleetRequest")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modifySFR = append(f.modifySFR, in)
	r := f.sfrs[aws.ToString(in.SpotFleetRequestId)]
	cfg := *r.SpotFleetRequestConfig
	cfg.TargetCapacity = in.TargetCapacity
	r.SpotFleetRequestConfig = &cfg
	f.sfrs[aws.ToString(in.SpotFleetRequestId)] = r
	return &ec2.ModifySpotFleetRequestOutput{Return: aws.Bool(true)}, nil
}

func (f *fakeFleet) CancelSpotFleetRequests(_ context.Context, in *ec2.CancelSpotFleetRequestsInput, _ ...func(*ec2.Options)) (*ec2.CancelSpotFleetRequestsOutput, error) {
	f.log.add("CancelSpotFleetRequests")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelSFRs = append(f.cancelSFRs, in)
	for _, id := range in.SpotFleetRequestIds {
		r := f.sfrs[id]
		r.SpotFleetRequestState = types.BatchStateCancelledRunning
		if aws.ToBool(in.TerminateInstances) {
			r.SpotFleetRequestState = types.BatchStateCancelledTerminatingInstances
		}
		f.sfrs[id] = r
	}
	return &ec2.CancelSpotFleetRequestsOutput{}, nil
}

func (f *fakeFleet) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.log.add("CreateTags")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createTags = append(f.createTags, in)
	for _, id := range in.Resources {
		if fd, ok := f.fleets[id]; ok {
			fd.Tags = append(slices.Clone(fd.Tags), in.Tags...)
			f.fleets[id] = fd
		}
		if r, ok := f.sfrs[id]; ok {
			r.Tags = append(slices.Clone(r.Tags), in.Tags...)
			f.sfrs[id] = r
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

func (f *fakeFleet) CreateLaunchTemplate(_ context.Context, in *ec2.CreateLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	f.log.add("CreateLaunchTemplate")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createLT = append(f.createLT, in)
	name := aws.ToString(in.LaunchTemplateName)
	if _, ok := f.lts[name]; ok {
		return nil, &smithy.GenericAPIError{Code: "InvalidLaunchTemplateName.AlreadyExistsException", Message: "Launch template name already in use."}
	}
	lt := types.LaunchTemplate{LaunchTemplateId: aws.String(fmt.Sprintf("lt-%017d", len(f.lts)+1)), LaunchTemplateName: in.LaunchTemplateName,
		LatestVersionNumber: aws.Int64(1)}
	f.lts[name] = lt
	return &ec2.CreateLaunchTemplateOutput{LaunchTemplate: &lt}, nil
}

func (f *fakeFleet) DescribeLaunchTemplates(_ context.Context, in *ec2.DescribeLaunchTemplatesInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	f.log.add("DescribeLaunchTemplates")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ec2.DescribeLaunchTemplatesOutput{}
	for _, n := range in.LaunchTemplateNames {
		if lt, ok := f.lts[n]; ok {
			out.LaunchTemplates = append(out.LaunchTemplates, lt)
		}
	}
	return out, nil
}

func (f *fakeFleet) DescribeLaunchTemplateVersions(_ context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	f.log.add("DescribeLaunchTemplateVersions")
	f.mu.Lock()
	defer f.mu.Unlock()
	key := aws.ToString(in.LaunchTemplateId) + "@" + strings.Join(in.Versions, ",")
	d, ok := f.userLT[key]
	if !ok {
		return nil, notFound("InvalidLaunchTemplateId.NotFound", key)
	}
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []types.LaunchTemplateVersion{{
		LaunchTemplateId: in.LaunchTemplateId, LaunchTemplateData: &d}}}, nil
}

func (f *fakeFleet) DeleteLaunchTemplate(_ context.Context, in *ec2.DeleteLaunchTemplateInput, _ ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error) {
	f.log.add("DeleteLaunchTemplate")
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.LaunchTemplateName)
	if _, ok := f.lts[name]; !ok {
		return nil, &smithy.GenericAPIError{Code: "InvalidLaunchTemplateName.NotFoundException", Message: "not found: " + name}
	}
	delete(f.lts, name)
	f.deletedLTs = append(f.deletedLTs, name)
	return &ec2.DeleteLaunchTemplateOutput{}, nil
}

// fakeASG is an in-memory asgAPI.
type fakeASG struct {
	mu     sync.Mutex
	log    *callLog
	groups map[string]astypes.AutoScalingGroup

	creates    []*autoscaling.CreateAutoScalingGroupInput
	describes  [][]string
	updates    []*autoscaling.UpdateAutoScalingGroupInput
	terminates []*autoscaling.TerminateInstanceInAutoScalingGroupInput
	deletes    []*autoscaling.DeleteAutoScalingGroupInput
	activities []astypes.Activity
}

func newFakeASG(log *callLog) *fakeASG {
	return &fakeASG{log: log, groups: map[string]astypes.AutoScalingGroup{}}
}

func (a *fakeASG) CreateAutoScalingGroup(_ context.Context, in *autoscaling.CreateAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.CreateAutoScalingGroupOutput, error) {
	a.log.add("CreateAutoScalingGroup")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creates = append(a.creates, in)
	name := aws.ToString(in.AutoScalingGroupName)
	if _, ok := a.groups[name]; ok {
		return nil, &smithy.GenericAPIError{Code: "AlreadyExists", Message: "AutoScalingGroup by this name already exists"}
	}
	g := astypes.AutoScalingGroup{AutoScalingGroupName: in.AutoScalingGroupName, DesiredCapacity: in.DesiredCapacity,
		MaxSize: in.MaxSize, MinSize: in.MinSize, LaunchTemplate: in.LaunchTemplate, MixedInstancesPolicy: in.MixedInstancesPolicy}
	for _, t := range in.Tags {
		g.Tags = append(g.Tags, astypes.TagDescription{Key: t.Key, Value: t.Value})
	}
	a.groups[name] = g
	return &autoscaling.CreateAutoScalingGroupOutput{}, nil
}

func (a *fakeASG) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	a.log.add("DescribeAutoScalingGroups")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.describes = append(a.describes, slices.Clone(in.AutoScalingGroupNames))
	if len(in.AutoScalingGroupNames) > 50 {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "at most 50 names"}
	}
	out := &autoscaling.DescribeAutoScalingGroupsOutput{}
	for _, n := range in.AutoScalingGroupNames {
		if g, ok := a.groups[n]; ok {
			out.AutoScalingGroups = append(out.AutoScalingGroups, g)
		}
	}
	return out, nil
}

func (a *fakeASG) UpdateAutoScalingGroup(_ context.Context, in *autoscaling.UpdateAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.UpdateAutoScalingGroupOutput, error) {
	a.log.add("UpdateAutoScalingGroup")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.updates = append(a.updates, in)
	return &autoscaling.UpdateAutoScalingGroupOutput{}, nil
}

func (a *fakeASG) TerminateInstanceInAutoScalingGroup(_ context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	a.log.add("TerminateInstanceInAutoScalingGroup")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.terminates = append(a.terminates, in)
	for n, g := range a.groups {
		for i, x := range g.Instances {
			if aws.ToString(x.InstanceId) == aws.ToString(in.InstanceId) {
				g.Instances = slices.Delete(slices.Clone(g.Instances), i, i+1)
				if aws.ToBool(in.ShouldDecrementDesiredCapacity) {
					g.DesiredCapacity = aws.Int32(aws.ToInt32(g.DesiredCapacity) - 1)
				}
				a.groups[n] = g
				return &autoscaling.TerminateInstanceInAutoScalingGroupOutput{}, nil
			}
		}
	}
	return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Instance Id not found - No managed instance found for instance ID: " + aws.ToString(in.InstanceId)}
}

func (a *fakeASG) DeleteAutoScalingGroup(_ context.Context, in *autoscaling.DeleteAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.DeleteAutoScalingGroupOutput, error) {
	a.log.add("DeleteAutoScalingGroup")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deletes = append(a.deletes, in)
	delete(a.groups, aws.ToString(in.AutoScalingGroupName))
	return &autoscaling.DeleteAutoScalingGroupOutput{}, nil
}

func (a *fakeASG) DescribeScalingActivities(_ context.Context, in *autoscaling.DescribeScalingActivitiesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeScalingActivitiesOutput, error) {
	a.log.add("DescribeScalingActivities")
	a.mu.Lock()
	defer a.mu.Unlock()
	return &autoscaling.DescribeScalingActivitiesOutput{Activities: a.activities}, nil
}

func (a *fakeASG) CreateOrUpdateTags(_ context.Context, in *autoscaling.CreateOrUpdateTagsInput, _ ...func(*autoscaling.Options)) (*autoscaling.CreateOrUpdateTagsOutput, error) {
	a.log.add("CreateOrUpdateTags")
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range in.Tags {
		g := a.groups[aws.ToString(t.ResourceId)]
		g.Tags = append(slices.Clone(g.Tags), astypes.TagDescription{Key: t.Key, Value: t.Value})
		a.groups[aws.ToString(t.ResourceId)] = g
	}
	return &autoscaling.CreateOrUpdateTagsOutput{}, nil
}

// fleetRig is a provider on the fleet fakes.
type fleetRig struct {
	p   *Provider
	e   *fakeEC2
	s   *fakeSSM
	f   *fakeFleet
	a   *fakeASG
	log *callLog
	clk *clock.Fake
}

func newFleetRig() *fleetRig {
	p, e, s, clk := newFakeProvider()
	log := &callLog{}
	r := &fleetRig{p: p, e: e, s: s, f: newFakeFleet(log, e), a: newFakeASG(log), log: log, clk: clk}
	p.ec2, p.fleet, p.asg = loggedEC2{fakeEC2: e, log: log}, r.f, r.a
	return r
}

func (f *fakeFleet) DescribeFleetInstances(context.Context, *ec2.DescribeFleetInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeFleetInstancesOutput, error) {
	return &ec2.DescribeFleetInstancesOutput{}, nil
}

func (f *fakeFleet) DescribeSpotFleetInstances(context.Context, *ec2.DescribeSpotFleetInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeSpotFleetInstancesOutput, error) {
	return &ec2.DescribeSpotFleetInstancesOutput{}, nil
}
