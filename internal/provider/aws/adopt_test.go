package awsprov

import (
	"context"
	"slices"
	"testing"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func TestSimRetag(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{RetryAttempts: 2})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	old, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-1", ClientToken: "t1", Template: tpl, Units: 3, Tags: simTags("blue", "req-1")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-2", ClientToken: "t2", Template: tpl, Units: 1, Tags: simTags("red", "req-2")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Retag(ctx, "blue", "green")
	if err != nil || n != 3 {
		t.Fatalf("Retag = %d, %v; want 3", n, err)
	}
	got, _ := p.List(ctx, "green")
	if !slices.Equal(ids(got), ids(old.Instances)) {
		t.Fatalf("green after Retag = %v, want %v", ids(got), ids(old.Instances))
	}
	for _, in := range got {
		if in.Tags[provider.TagRequestID] != "req-1" {
			t.Errorf("other tags lost: %v", in.Tags)
		}
	}
	if left, _ := p.List(ctx, "blue"); len(left) != 0 {
		t.Fatalf("blue after Retag: %v", ids(left))
	}
	if red, _ := p.List(ctx, "red"); !slices.Equal(ids(red), ids(other.Instances)) {
		t.Fatalf("another cluster's instance was touched: %v", ids(red))
	}
	if n, err := p.Retag(ctx, "blue", "green"); err != nil || n != 0 {
		t.Fatalf("Retag again = %d, %v", n, err)
	}
}
