package awssim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	ptypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
)

func TestDescribeSpotPriceHistory(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	// StartTime now: one answer per AZ and product, the price in effect.
	out, err := s.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{
		StartTime: aws.Time(t0), InstanceTypes: []types.InstanceType{"c5.large"},
		ProductDescriptions: []string{"Linux/UNIX"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SpotPriceHistory) != 3 {
		t.Fatalf("want one price per AZ, got %d: %+v", len(out.SpotPriceHistory), out.SpotPriceHistory)
	}
	if got := aws.ToString(out.SpotPriceHistory[0].SpotPrice); got != formatPrice(0.085*0.30) {
		t.Fatalf("us-east-1a Spot price %s", got)
	}

	// The lever adds a point; history from before it shows both, from
	// after it the new one only; the filter narrows to the AZ.
	if err := s.r.SetPrices(PriceSetting{Spot: []SpotPriceSetting{{InstanceType: "c5.large", AvailabilityZone: "us-east-1b", Price: 0.05}}}); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(time.Minute)
	in := &ec2.DescribeSpotPriceHistoryInput{
		StartTime: aws.Time(t0.Add(-time.Hour)), InstanceTypes: []types.InstanceType{"c5.large"},
		Filters: []types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}},
			{Name: aws.String("product-description"), Values: []string{"Linux/UNIX"}}},
	}
	out, err = s.ec2.DescribeSpotPriceHistory(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SpotPriceHistory) != 2 || aws.ToString(out.SpotPriceHistory[1].SpotPrice) != formatPrice(0.05) {
		t.Fatalf("history with the new point: %+v", out.SpotPriceHistory)
	}
	in.StartTime = aws.Time(s.clk.Now())
	out, _ = s.ec2.DescribeSpotPriceHistory(ctx, in)
	if len(out.SpotPriceHistory) != 1 || aws.ToString(out.SpotPriceHistory[0].SpotPrice) != formatPrice(0.05) {
		t.Fatalf("price in effect now: %+v", out.SpotPriceHistory)
	}

	// Pagination: every type, AZ and product, 5 at a time.
	p := ec2.NewDescribeSpotPriceHistoryPaginator(s.ec2, &ec2.DescribeSpotPriceHistoryInput{StartTime: aws.Time(s.clk.Now()), MaxResults: aws.Int32(5)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.SpotPriceHistory) > 5 {
			t.Fatalf("page of %d", len(page.SpotPriceHistory))
		}
		n += len(page.SpotPriceHistory)
	}
	if want := len(s.r.typeList) * 3 * len(spotProducts); n != want {
		t.Fatalf("paginated %d prices, want %d", n, want)
	}
	_, err = s.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{Filters: []types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = s.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{MaxResults: aws.Int32(1001)})
	wantCode(t, err, "InvalidParameterValue")
	s.r.SetFaults(Faults{Denied: []string{"DescribeSpotPriceHistory"}})
	_, err = s.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{})
	wantCode(t, err, "UnauthorizedOperation")
}

func TestGetProducts(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	pc := pricing.NewFromConfig(ClientConfig(s.endpoint, "us-east-1"), func(o *pricing.Options) { o.RetryMaxAttempts = 1 })
	filters := func(typ string) []ptypes.Filter {
		var fs []ptypes.Filter
		for k, v := range map[string]string{"instanceType": typ, "regionCode": "us-east-1", "operatingSystem": "Linux",
			"tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"} {
			fs = append(fs, ptypes.Filter{Type: ptypes.FilterTypeTermMatch, Field: aws.String(k), Value: aws.String(v)})
		}
		return fs
	}
	out, err := pc.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters("m5.large"), FormatVersion: aws.String("aws_v1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.PriceList) != 1 {
		t.Fatalf("want one product, got %d", len(out.PriceList))
	}
	var doc struct {
		Product struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"product"`
		Terms struct {
			OnDemand map[string]struct {
				PriceDimensions map[string]struct {
					Unit         string            `json:"unit"`
					PricePerUnit map[string]string `json:"pricePerUnit"`
				} `json:"priceDimensions"`
			} `json:"OnDemand"`
		} `json:"terms"`
	}
	if err := json.Unmarshal([]byte(out.PriceList[0]), &doc); err != nil {
		t.Fatalf("PriceList entry is not a JSON document: %v", err)
	}
	if doc.Product.Attributes["instanceType"] != "m5.large" {
		t.Fatalf("product %v", doc.Product.Attributes)
	}
	for _, term := range doc.Terms.OnDemand {
		for _, d := range term.PriceDimensions {
			if d.Unit != "Hrs" || !strings.HasPrefix(d.PricePerUnit["USD"], "0.096") {
				t.Fatalf("price dimension %+v", d)
			}
		}
	}

	// The lever changes the on-demand price; pagination walks everything.
	if err := s.r.SetPrices(PriceSetting{OnDemand: map[string]float64{"m5.large": 0.1}}); err != nil {
		t.Fatal(err)
	}
	out, _ = pc.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters("m5.large")})
	if !strings.Contains(out.PriceList[0], `"USD":"0.1000000000"`) {
		t.Fatalf("lever's price not served: %s", out.PriceList[0])
	}
	pg := pricing.NewGetProductsPaginator(pc, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(7)})
	n := 0
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.PriceList)
	}
	if n != 3*len(s.r.typeList) {
		t.Fatalf("paginated %d products", n)
	}
	_, err = pc.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(101)})
	wantCode(t, err, "InvalidParameterException")
	s.r.SetFaults(Faults{Denied: []string{"GetProducts"}})
	_, err = pc.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2")})
	wantCode(t, err, "AccessDeniedException")

	// The lever over HTTP refuses an unknown type.
	resp, err := http.Post(s.endpoint+"/_sim/prices", "application/json", strings.NewReader(`{"onDemand":{"x9.huge":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("unknown type accepted")
	}
}
