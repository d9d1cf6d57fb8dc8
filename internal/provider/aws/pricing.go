package awsprov

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	ptypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/ohfp/ohfp/internal/provider"
)

// Pricing modes (Settings.Pricing).
const (
	PricingOff   = "off"
	PricingTable = "table"
	PricingAPI   = "api"
)

// Price caching.
const (
	// DefaultSpotPriceTTL is how long a Spot price is reused.
	DefaultSpotPriceTTL = 10 * time.Minute
	// onDemandPriceTTL: list prices change a few times a year.
	onDemandPriceTTL = 24 * time.Hour
	// priceRetry is how long a failed price fetch is not tried again.
	priceRetry = 5 * time.Minute
	// DefaultPricingRegion hosts the Price List Query API endpoint
	// (api.pricing.us-east-1.amazonaws.com; also eu-central-1 and
	// ap-south-1).
	DefaultPricingRegion = "us-east-1"
)

// spotProductDescriptions are the Linux Spot products asked: EC2 lists
// VPC instances under either.
var spotProductDescriptions = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

// pricingAPI lists the Price List Query API operations ohfp calls.
type pricingAPI interface {
	GetProducts(ctx context.Context, in *pricing.GetProductsInput, optFns ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

// spotPriceAPI lists the EC2 Spot price operation ohfp calls (the same
// EC2 client as ec2API, apart so that its fakes need not implement it).
type spotPriceAPI interface {
	DescribeSpotPriceHistory(ctx context.Context, in *ec2.DescribeSpotPriceHistoryInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
}

var (
	_ pricingAPI   = (*pricing.Client)(nil)
	_ spotPriceAPI = (*ec2.Client)(nil)
)

type priceEntry struct {
	price   provider.Price
	expires time.Time
}

// prices is a provider's price configuration and cache.
type prices struct {
	mode    string
	table   map[string]float64
	spotTTL time.Duration
	region  string // the provider's region (Price List regionCode)
	list    pricingAPI
	spot    spotPriceAPI

	// under Provider.mu
	onDemand map[string]priceEntry
	spotC    map[provider.Offering]priceEntry
}

func newPrices(s Settings) prices {
	mode := s.Pricing
	if mode == "" {
		mode = PricingTable
	}
	ttl := s.SpotPriceTTL
	if ttl <= 0 {
		ttl = DefaultSpotPriceTTL
	}
	return prices{mode: mode, table: s.Prices, spotTTL: ttl, onDemand: map[string]priceEntry{}, spotC: map[provider.Offering]priceEntry{}}
}

var _ provider.Pricer = (*Provider)(nil)

// PricingOn reports whether the provider estimates prices (pricing: is not
// off).
func (p *Provider) PricingOn() bool { return p.prices.mode != PricingOff }

// Prices returns an hourly estimate for each offering (see
// provider.Pricer): on-demand from the prices: table, else (pricing: api)
// the Price List API, cached a day; Spot (pricing: api) from
// DescribeSpotPriceHistory, one call for every type and zone asked,
// cached SpotPriceTTL. Failures are cached priceRetry.
func (p *Provider) Prices(ctx context.Context, offers []provider.Offering) map[provider.Offering]provider.Price {
	pr := &p.prices
	now := p.clock.Now()
	out := make(map[provider.Offering]provider.Price, len(offers))
	var needTypes []string
	var needSpot []provider.Offering
	p.mu.Lock()
	for _, o := range offers {
		if _, done := out[o]; done {
			continue
		}
		switch {
		case pr.mode == PricingOff:
			out[o] = provider.Price{Reason: "pricing: off", At: now}
		case !o.Spot && pr.table[o.InstanceType] > 0:
			out[o] = provider.Price{Known: true, Dollars: pr.table[o.InstanceType], Source: provider.SourceTable, At: now}
		case !o.Spot && pr.mode != PricingAPI:
			out[o] = provider.Price{Reason: fmt.Sprintf("no prices: entry for %s (pricing: table; pricing: api asks AWS's Price List)", o.InstanceType), At: now}
		case o.Spot && pr.mode != PricingAPI:
			out[o] = provider.Price{Reason: "Spot prices come from DescribeSpotPriceHistory: set pricing: api", At: now}
		case o.Spot && o.AZ == "":
			out[o] = provider.Price{Reason: "Availability Zone not known yet", At: now}
		case !o.Spot:
			if e, ok := pr.onDemand[o.InstanceType]; ok && now.Before(e.expires) {
				out[o] = e.price
			} else if !slices.Contains(needTypes, o.InstanceType) {
				needTypes = append(needTypes, o.InstanceType)
			}
		default:
			if e, ok := pr.spotC[o]; ok && now.Before(e.expires) {
				out[o] = e.price
			} else {
				needSpot = append(needSpot, o)
			}
		}
	}
	p.mu.Unlock()
	if len(needTypes) == 0 && len(needSpot) == 0 {
		return out
	}

	odGot := map[string]priceEntry{}
	for _, typ := range needTypes {
		price := p.listPrice(ctx, typ)
		ttl := onDemandPriceTTL
		if !price.Known {
			ttl = priceRetry
		}
		odGot[typ] = priceEntry{price: price, expires: price.At.Add(ttl)}
	}
	spotGot := map[provider.Offering]priceEntry{}
	if len(needSpot) > 0 {
		for o, price := range p.spotPrices(ctx, needSpot) {
			ttl := pr.spotTTL
			if !price.Known {
				ttl = priceRetry
			}
			spotGot[o] = priceEntry{price: price, expires: price.At.Add(ttl)}
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for typ, e := range odGot {
		pr.onDemand[typ] = e
	}
	for o, e := range spotGot {
		pr.spotC[o] = e
	}
	for _, o := range offers {
		if _, done := out[o]; done {
			continue
		}
		if o.Spot {
			out[o] = pr.spotC[o].price
		} else {
			out[o] = pr.onDemand[o.InstanceType].price
		}
	}
	return out
}

// listPrice asks the Price List API for the on-demand hourly price of a
// Linux instance of type typ with shared tenancy in the provider's region.
func (p *Provider) listPrice(ctx context.Context, typ string) provider.Price {
	if p.prices.list == nil {
		return provider.Price{Reason: "no Price List client", At: p.clock.Now()}
	}
	filter := func(field, value string) ptypes.Filter {
		return ptypes.Filter{Type: ptypes.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	in := &pricing.GetProductsInput{
		ServiceCode:   aws.String("AmazonEC2"),
		FormatVersion: aws.String("aws_v1"),
		MaxResults:    aws.Int32(10),
		Filters: []ptypes.Filter{
			filter("instanceType", typ), filter("regionCode", p.prices.region),
			filter("operatingSystem", "Linux"), filter("tenancy", "Shared"),
			filter("preInstalledSw", "NA"), filter("capacitystatus", "Used"),
			filter("licenseModel", "No License required"),
		},
	}
	out, err := p.prices.list.GetProducts(ctx, in)
	now := p.clock.Now()
	if err != nil {
		return provider.Price{Reason: priceError("GetProducts", "pricing:GetProducts", err), At: now}
	}
	for _, doc := range out.PriceList {
		if d, ok := onDemandHourly(doc); ok {
			return provider.Price{Known: true, Dollars: d, Source: provider.SourcePriceList, At: now}
		}
	}
	return provider.Price{Reason: fmt.Sprintf("the Price List has no Linux on-demand price for %s in %s", typ, p.prices.region), At: now}
}

// onDemandHourly reads the hourly USD price of a Price List product
// document (terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD, unit Hrs).
func onDemandHourly(doc string) (float64, bool) {
	var d struct {
		Terms struct {
			OnDemand map[string]struct {
				PriceDimensions map[string]struct {
					Unit         string            `json:"unit"`
					PricePerUnit map[string]string `json:"pricePerUnit"`
				} `json:"priceDimensions"`
			} `json:"OnDemand"`
		} `json:"terms"`
	}
	if json.Unmarshal([]byte(doc), &d) != nil {
		return 0, false
	}
	for _, term := range d.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			if dim.Unit != "Hrs" {
				continue
			}
			if f, err := strconv.ParseFloat(dim.PricePerUnit["USD"], 64); err == nil && f > 0 {
				return f, true
			}
		}
	}
	return 0, false
}

// spotPrices asks DescribeSpotPriceHistory, from now (the price in effect),
// for every type and zone of offers in one paginated call, and keeps the
// latest price of each.
func (p *Provider) spotPrices(ctx context.Context, offers []provider.Offering) map[provider.Offering]provider.Price {
	var typesAsked []types.InstanceType
	var zones []string
	for _, o := range offers {
		if !slices.Contains(typesAsked, types.InstanceType(o.InstanceType)) {
			typesAsked = append(typesAsked, types.InstanceType(o.InstanceType))
		}
		if !slices.Contains(zones, o.AZ) {
			zones = append(zones, o.AZ)
		}
	}
	out := map[provider.Offering]provider.Price{}
	fail := func(reason string) map[provider.Offering]provider.Price {
		now := p.clock.Now()
		for _, o := range offers {
			out[o] = provider.Price{Reason: reason, At: now}
		}
		return out
	}
	if p.prices.spot == nil {
		return fail("no EC2 client")
	}
	type seen struct {
		price float64
		at    time.Time
	}
	latest := map[provider.Offering]seen{}
	in := &ec2.DescribeSpotPriceHistoryInput{
		StartTime:           aws.Time(p.clock.Now()),
		InstanceTypes:       typesAsked,
		ProductDescriptions: spotProductDescriptions,
		Filters:             []types.Filter{{Name: aws.String("availability-zone"), Values: zones}},
		MaxResults:          aws.Int32(1000),
	}
	pg := ec2.NewDescribeSpotPriceHistoryPaginator(p.prices.spot, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return fail(priceError("DescribeSpotPriceHistory", "ec2:DescribeSpotPriceHistory", err))
		}
		for _, h := range page.SpotPriceHistory {
			f, err := strconv.ParseFloat(aws.ToString(h.SpotPrice), 64)
			if err != nil {
				continue
			}
			o := provider.Offering{InstanceType: string(h.InstanceType), AZ: aws.ToString(h.AvailabilityZone), Spot: true}
			at := aws.ToTime(h.Timestamp)
			if s, ok := latest[o]; !ok || at.After(s.at) {
				latest[o] = seen{f, at}
			}
		}
	}
	now := p.clock.Now()
	for _, o := range offers {
		if s, ok := latest[o]; ok {
			out[o] = provider.Price{Known: true, Dollars: s.price, Source: provider.SourceSpotHistory, At: now}
		} else {
			out[o] = provider.Price{Reason: fmt.Sprintf("DescribeSpotPriceHistory has no Linux/UNIX price for %s in %s", o.InstanceType, o.AZ), At: now}
		}
	}
	return out
}

// priceError says why a price fetch failed, naming the IAM action when
// AWS refused it.
func priceError(op, action string, err error) string {
	switch code := apiCode(err); code {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
		return fmt.Sprintf("%s not allowed (%s): add %s to ohfpd's IAM policy, or set prices: (on-demand) and pricing: table", op, code, action)
	}
	var te *timeoutError
	if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("%s: AWS not answering in time (%v)", op, err)
	}
	msg := classify(op, err).Error()
	if isNetworkError(err) {
		msg = fmt.Sprintf("%s: endpoint not reachable: %v", op, err)
	}
	return strings.TrimSpace(msg)
}
