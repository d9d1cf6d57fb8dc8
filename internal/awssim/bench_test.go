package awssim

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fill launches n instances directly, one reservation per 100, tagged
// req=<reservation number>.
func fill(b testing.TB, s *sim, n int) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for i := 0; i < n; i += 100 {
		if _, err := s.r.launch(launchSpec{instanceType: "t3.micro", imageID: s.ami, tags: map[string]string{"req": fmt.Sprint(i / 100)}}, 100, 100); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTenThousandInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := newSim(t, Options{})
	fill(t, s, 10000)
	out, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:req"), Values: []string{"42"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 100 {
		t.Fatalf("tag filter over 10k: %d reservations", len(out.Reservations))
	}
}

func BenchmarkDescribeInstancesTagFilter10k(b *testing.B) {
	s := newSim(b, Options{})
	fill(b, s, 10000)
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:req"), Values: []string{"42"}}}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.ec2.DescribeInstances(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribeInstancesPage1000of10k(b *testing.B) {
	s := newSim(b, Options{})
	fill(b, s, 10000)
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.ec2.DescribeInstances(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeDescribePage1000 measures the simulator alone (no SDK
// decoding): handler and XML encoding of 1000 instances.
func BenchmarkServeDescribePage1000(b *testing.B) {
	s := newSim(b, Options{})
	fill(b, s, 10000)
	c := &call{r: s.r, service: svcEC2, action: "DescribeInstances", p: newParams(map[string][]string{"MaxResults": {"1000"}})}
	b.ResetTimer()
	for b.Loop() {
		s.r.mu.Lock()
		out, err := s.r.describeInstances(c)
		s.r.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := innerXML(out); err != nil {
			b.Fatal(err)
		}
	}
}
