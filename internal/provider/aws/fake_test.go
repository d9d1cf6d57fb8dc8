package awsprov

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/clock"
)

// fakeEC2 is an in-memory EC2 behind the ec2API interface: enough to check
// what the provider sends and how it reads answers.
type fakeEC2 struct {
	mu        sync.Mutex
	instances []types.Instance // in launch order
	images    map[string]string
	itypes    map[string]types.InstanceTypeInfo
	spot      map[string]types.SpotInstanceRequest
	// notFoundWithoutIDs makes NotFound messages name no id.
	notFoundWithoutIDs bool
	runErr             error // returned by RunInstances when set
	capacity           int   // RunInstances launches at most this many (0: no limit)

	runs          []*ec2.RunInstancesInput
	describes     []*ec2.DescribeInstancesInput
	terminates    [][]string
	imageCalls    int
	typeCalls     int
	spotCalls     [][]string
	nextID        int
	terminatedSet map[string]bool
}

func newFakeEC2() *fakeEC2 {
	return &fakeEC2{images: map[string]string{}, itypes: map[string]types.InstanceTypeInfo{},
		spot: map[string]types.SpotInstanceRequest{}, terminatedSet: map[string]bool{}}
}

func (f *fakeEC2) addInstance(owner string) string {
	f.nextID++
	id := fmt.Sprintf("i-%017x", f.nextID)
	f.instances = append(f.instances, types.Instance{
		InstanceId:   aws.String(id),
		InstanceType: types.InstanceTypeC5Large,
		State:        &types.InstanceState{Name: types.InstanceStateNameRunning},
		Tags:         []types.Tag{{Key: aws.String("ohfp:managed-by"), Value: aws.String(owner)}},
	})
	return id
}

func (f *fakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, in)
	if f.runErr != nil {
		return nil, f.runErr
	}
	n := int(aws.ToInt32(in.MaxCount))
	if f.capacity > 0 && n > f.capacity {
		n = f.capacity
	}
	out := &ec2.RunInstancesOutput{ReservationId: aws.String("r-1")}
	for range n {
		f.nextID++
		i := types.Instance{
			InstanceId:   aws.String(fmt.Sprintf("i-%017x", f.nextID)),
			InstanceType: in.InstanceType,
			State:        &types.InstanceState{Name: types.InstanceStateNamePending},
			SubnetId:     in.SubnetId,
		}
		for _, ts := range in.TagSpecifications {
			if ts.ResourceType == types.ResourceTypeInstance {
				i.Tags = ts.Tags
			}
		}
		f.instances = append(f.instances, i)
		out.Instances = append(out.Instances, i)
	}
	return out, nil
}

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := *in
	f.describes = append(f.describes, &cp)
	var match []types.Instance
	for _, i := range f.instances {
		ok := true
		for _, flt := range in.Filters {
			name := aws.ToString(flt.Name)
			switch {
			case strings.HasPrefix(name, "tag:"):
				v, has := tagValue(i.Tags, strings.TrimPrefix(name, "tag:"))
				ok = ok && has && slices.Contains(flt.Values, v)
			case name == "instance-state-name":
				ok = ok && slices.Contains(flt.Values, string(i.State.Name))
			default:
				return nil, &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "unknown filter " + name}
			}
		}
		if ok {
			match = append(match, i)
		}
	}
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	size := int(aws.ToInt32(in.MaxResults))
	if size == 0 {
		size = len(match)
	}
	end := min(start+size, len(match))
	out := &ec2.DescribeInstancesOutput{}
	if end > start {
		out.Reservations = []types.Reservation{{Instances: match[start:end]}}
	}
	if end < len(match) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminates = append(f.terminates, slices.Clone(in.InstanceIds))
	known := map[string]*types.Instance{}
	for k := range f.instances {
		known[aws.ToString(f.instances[k].InstanceId)] = &f.instances[k]
	}
	var missing []string
	for _, id := range in.InstanceIds {
		if known[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		msg := "The instance ID '" + missing[0] + "' does not exist"
		if len(missing) > 1 {
			msg = "The instance IDs '" + strings.Join(missing, ", ") + "' do not exist"
		}
		if f.notFoundWithoutIDs {
			msg = "Some instance IDs do not exist"
		}
		return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: msg}
	}
	for _, id := range in.InstanceIds {
		known[id].State = &types.InstanceState{Name: types.InstanceStateNameShuttingDown}
		f.terminatedSet[id] = true
	}
	return &ec2.TerminateInstancesOutput{}, nil
}

func (f *fakeEC2) DescribeInstanceTypes(_ context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typeCalls++
	out := &ec2.DescribeInstanceTypesOutput{}
	for _, t := range in.InstanceTypes {
		info, ok := f.itypes[string(t)]
		if !ok {
			return nil, &smithy.GenericAPIError{Code: "InvalidInstanceType", Message: fmt.Sprintf("The following supplied instance types do not exist: [%s]", t)}
		}
		out.InstanceTypes = append(out.InstanceTypes, info)
	}
	return out, nil
}

func (f *fakeEC2) DescribeSpotInstanceRequests(_ context.Context, in *ec2.DescribeSpotInstanceRequestsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spotCalls = append(f.spotCalls, slices.Clone(in.SpotInstanceRequestIds))
	out := &ec2.DescribeSpotInstanceRequestsOutput{}
	for _, fl := range in.Filters {
		if aws.ToString(fl.Name) != "spot-instance-request-id" {
			continue
		}
		f.spotCalls[len(f.spotCalls)-1] = slices.Clone(fl.Values)
		for _, id := range fl.Values {
			if r, ok := f.spot[id]; ok { // a filter leaves unknown ids out
				out.SpotInstanceRequests = append(out.SpotInstanceRequests, r)
			}
		}
	}
	for _, id := range in.SpotInstanceRequestIds {
		r, ok := f.spot[id]
		if !ok {
			return nil, &smithy.GenericAPIError{Code: "InvalidSpotInstanceRequestID.NotFound",
				Message: "The spot instance request ID '" + id + "' does not exist"}
		}
		out.SpotInstanceRequests = append(out.SpotInstanceRequests, r)
	}
	return out, nil
}

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imageCalls++
	out := &ec2.DescribeImagesOutput{}
	for _, id := range in.ImageIds {
		dev, ok := f.images[id]
		if !ok {
			return nil, &smithy.GenericAPIError{Code: "InvalidAMIID.NotFound", Message: "The image id '[" + id + "]' does not exist"}
		}
		out.Images = append(out.Images, types.Image{ImageId: aws.String(id), RootDeviceName: aws.String(dev)})
	}
	return out, nil
}

// fakeSSM holds parameters and counts reads.
type fakeSSM struct {
	mu     sync.Mutex
	params map[string]string
	calls  int
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	v, ok := f.params[aws.ToString(in.Name)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ParameterNotFound", Message: ""}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

// newFakeProvider returns a provider on fakes and a fake clock.
func newFakeProvider() (*Provider, *fakeEC2, *fakeSSM, *clock.Fake) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	p := newProvider(Settings{Clock: clk}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e, s := newFakeEC2(), &fakeSSM{params: map[string]string{}}
	p.ec2, p.ssm = e, s
	return p, e, s, clk
}
