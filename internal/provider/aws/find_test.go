package awsprov

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Tag writes the return tag (an unknown id named NotFound, the others
// tagged); Find finds the cluster's instances by id, host name, request
// and return tag, and never another cluster's.
func TestSimTagAndFind(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 2})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	mine, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-1", ClientToken: "t1", Template: tpl, Units: 3, Tags: simTags("cluster-1", "req-1")})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-9", ClientToken: "t9", Template: tpl, Units: 1, Tags: simTags("other", "req-9")})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	a, b := mine.Instances[0].ID, mine.Instances[1].ID
	err = p.Tag(ctx, []string{a, b, "i-0123456789abcdef0"}, map[string]string{provider.TagReturnID: "ret-1"})
	if pe, ok := err.(*provider.Error); !ok || pe.Kind != provider.NotFound || !slices.Equal(pe.IDs, []string{"i-0123456789abcdef0"}) {
		t.Fatalf("Tag with an unknown id: %v", err)
	}
	got, err := p.Find(ctx, "cluster-1", provider.Query{ReturnIDs: []string{"ret-1"}})
	if err != nil || !slices.Equal(ids(got), ids(mine.Instances[:2])) {
		t.Fatalf("Find by return tag = %v, %v", ids(got), err)
	}
	listed, err := p.List(ctx, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, in := range listed {
		if in.ID == mine.Instances[2].ID {
			name = in.PrivateDNS
		}
	}
	got, err = p.Find(ctx, "cluster-1", provider.Query{Names: []string{name}, IDs: []string{theirs.Instances[0].ID}})
	if err != nil || !slices.Equal(ids(got), []string{mine.Instances[2].ID}) {
		t.Fatalf("Find by name (and another cluster's id) = %v, %v", ids(got), err)
	}
	got, err = p.Find(ctx, "cluster-1", provider.Query{RequestIDs: []string{"req-1", "req-9"}})
	if err != nil || !slices.Equal(ids(got), ids(mine.Instances)) {
		t.Fatalf("Find by request = %v, %v", ids(got), err)
	}
}
