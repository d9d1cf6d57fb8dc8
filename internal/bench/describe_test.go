package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
	"github.com/ohfp/ohfp/internal/template"
)

// BenchmarkList10k is the cloud side of one reconcile pass with 10,000
// instances: the provider's List (10 DescribeInstances pages of 1,000
// through aws-sdk-go-v2, configured as ohfpd configures it) against an
// in-process simulated region. Its CPU profile splits the cost between the
// region (awssim, building the XML) and ohfpd (the SDK's deserializer and
// toInstance).
func BenchmarkList10k(b *testing.B) {
	r := awssim.New(awssim.Options{LaunchDelay: awssim.NoDelay})
	endpoint, stop := r.Start()
	b.Cleanup(stop)
	ctx := context.Background()
	p, err := awsprov.New(ctx, awsprov.Settings{Region: "us-east-1", EndpointURL: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider("SIMULATED", "SIMULATED", "")}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	tpl := template.Template{TemplateID: "Bench-c5", MaxNumber: -1, VMType: "c5.large",
		ImageID: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", InstanceTags: "cluster=bench"}
	for i := range 10 {
		tags := map[string]string{provider.TagManagedBy: "bench", provider.TagProvider: "aws",
			provider.TagRequestID: "req-" + string(rune('a'+i)), provider.TagTemplateID: tpl.TemplateID, "cluster": "bench"}
		res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: tags[provider.TagRequestID], ClientToken: tags[provider.TagRequestID],
			Template: tpl, Units: 1000, Tags: tags})
		if err != nil || len(res.Instances) != 1000 {
			b.Fatalf("launch %d: %v (%d instances)", i, err, len(res.Instances))
		}
	}
	r.Tick()
	b.ReportAllocs()
	for b.Loop() {
		insts, err := p.List(ctx, "bench")
		if err != nil || len(insts) != 10000 {
			b.Fatal(err, len(insts))
		}
	}
}
