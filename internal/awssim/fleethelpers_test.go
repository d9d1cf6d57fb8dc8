package awssim

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/clock"
)

// fleetEnv is a simulated region served on loopback with real SDK clients
// (retries off, so errors surface at once).
type fleetEnv struct {
	r   *Region
	clk *clock.Fake
	ec2 *ec2.Client
	as  *autoscaling.Client
	ctx context.Context
	az  []string          // the three AZs
	sn  map[string]string // AZ -> subnet id
	ami string
}

func newFleetEnv(t *testing.T) *fleetEnv {
	t.Helper()
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	r := New(Options{Clock: clk, Consistency: Immediate})
	endpoint, stop := r.Start()
	t.Cleanup(stop)
	cfg := ClientConfig(endpoint, "us-east-1")
	e := &fleetEnv{
		r: r, clk: clk, ctx: context.Background(),
		ec2: ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.RetryMaxAttempts = 1 }),
		as:  autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.RetryMaxAttempts = 1 }),
		sn:  r.Subnets(),
		ami: r.ImageID("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"),
	}
	e.az = sortedKeys(e.sn)
	if len(e.az) != 3 {
		t.Fatalf("seeded region has %d AZs, want 3", len(e.az))
	}
	return e
}

// addLT stores a launch template (version 1) directly in the region, with
// an AMI, an instance type and instance tags.
func (e *fleetEnv) addLT(t *testing.T, name, instanceType string, tags map[string]string) string {
	t.Helper()
	r := e.r
	r.mu.Lock()
	defer r.mu.Unlock()
	lt := &launchTemplate{id: r.newID("lt-"), name: name, created: r.now, defaultVer: 1, latestVer: 1, tags: map[string]string{},
		versions: map[int64]*ltVersion{1: {number: 1, created: r.now, data: ltData{imageID: e.ami, instanceType: instanceType, tags: maps.Clone(tags)}}}}
	r.lts[lt.id] = lt
	r.ltByName[name] = lt
	r.ltOrder = append(r.ltOrder, lt)
	return lt.id
}

// advance moves the fake clock and lets the region catch up.
func (e *fleetEnv) advance(d time.Duration) {
	e.clk.Advance(d)
	e.r.Tick()
}

// live returns the region's live instances owned by owner.
func (e *fleetEnv) live(owner string) []InstanceInfo {
	var out []InstanceInfo
	for _, in := range e.r.Instances() {
		if in.Owner == owner && (in.State == statePending || in.State == stateRunning) {
			out = append(out, in)
		}
	}
	return out
}

func units(ins []InstanceInfo) float64 {
	var u float64
	for _, in := range ins {
		u += in.Weight
	}
	return u
}

// apiCode returns the AWS error code of err, "" if it is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
