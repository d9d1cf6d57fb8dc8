package awssim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prices: EC2's DescribeSpotPriceHistory (EC2 Query protocol) and the
// Price List Query API's GetProducts (JSON 1.1, X-Amz-Target
// AWSPriceListService.GetProducts), over the catalogue's prices. See
// doc.go, "Prices".

const svcPricing = "pricing"

// pricingTargetPrefix is the X-Amz-Target prefix of the Price List Query
// API.
const pricingTargetPrefix = "AWSPriceListService."

// spotProducts are the product descriptions the simulated Spot market
// prices (EC2 API Reference, DescribeSpotPriceHistory, ProductDescription).
var spotProducts = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

type spotKey struct{ typ, az string }

type pricePoint struct {
	at    time.Time
	price float64
}

// spotHistoryStart is when every (type, AZ) got its first Spot price.
var spotHistoryStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// spotPoints is the Spot price history of a type in an AZ, oldest first:
// the catalogue's stable discount from spotHistoryStart, then what the
// /_sim/prices lever set. Call with the lock held.
func (r *Region) spotPoints(t *instanceType, az string) []pricePoint {
	base := pricePoint{at: spotHistoryStart, price: t.price * (0.30 + 0.02*float64(az[len(az)-1]-'a'))}
	return append([]pricePoint{base}, r.spotSet[spotKey{t.name, az}]...)
}

// PriceSetting is the /_sim/prices lever: on-demand prices by instance
// type, and Spot prices by type and AZ (each a new point in the Spot
// price history, timestamped now).
type PriceSetting struct {
	OnDemand map[string]float64 `json:"onDemand,omitempty"`
	Spot     []SpotPriceSetting `json:"spot,omitempty"`
}

// SpotPriceSetting is one new Spot price.
type SpotPriceSetting struct {
	InstanceType     string  `json:"instanceType"`
	AvailabilityZone string  `json:"availabilityZone"`
	Price            float64 `json:"price"`
}

// SetPrices applies a price setting; an unknown type or AZ, or a price
// not above 0, is an error and changes nothing.
func (r *Region) SetPrices(s PriceSetting) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for typ, p := range s.OnDemand {
		if r.types[typ] == nil {
			return fmt.Errorf("awssim: unknown instance type %q", typ)
		}
		if p <= 0 {
			return fmt.Errorf("awssim: price %v for %s is not above 0", p, typ)
		}
	}
	for _, sp := range s.Spot {
		if r.types[sp.InstanceType] == nil {
			return fmt.Errorf("awssim: unknown instance type %q", sp.InstanceType)
		}
		if !r.knownAZ(sp.AvailabilityZone) {
			return fmt.Errorf("awssim: unknown Availability Zone %q", sp.AvailabilityZone)
		}
		if sp.Price <= 0 {
			return fmt.Errorf("awssim: Spot price %v is not above 0", sp.Price)
		}
	}
	r.advance(r.clk.Now())
	for typ, p := range s.OnDemand {
		r.types[typ].price = p
	}
	for _, sp := range s.Spot {
		k := spotKey{sp.InstanceType, sp.AvailabilityZone}
		r.spotSet[k] = append(r.spotSet[k], pricePoint{at: r.now, price: sp.Price})
	}
	return nil
}

func (r *Region) knownAZ(az string) bool {
	for _, s := range r.subnets {
		if s.az == az {
			return true
		}
	}
	return false
}

func (r *Region) azs() []string {
	var out []string
	for _, s := range r.subnets {
		if !contains(out, s.az) {
			out = append(out, s.az)
		}
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// DescribeSpotPriceHistory

type spotPriceXML struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	InstanceType       string `xml:"instanceType"`
	ProductDescription string `xml:"productDescription"`
	SpotPrice          string `xml:"spotPrice"`
	Timestamp          string `xml:"timestamp"`
}

type describeSpotPriceHistoryXML struct {
	Items     []spotPriceXML `xml:"spotPriceHistorySet>item"`
	NextToken string         `xml:"nextToken"`
}

type spotPriceItem struct {
	az, typ, product string
	price            float64
	at               time.Time
}

// describeSpotPriceHistory answers for each type, AZ and product the
// price changes between StartTime and EndTime (default: now), plus the
// last change before StartTime, the price in effect at StartTime (EC2 API
// Reference, DescribeSpotPriceHistory). Without StartTime, the whole
// history (EC2 keeps 90 days: older points are dropped). Oldest first.
func (r *Region) describeSpotPriceHistory(c *call) (any, error) {
	types := c.p.list("InstanceType")
	products := c.p.list("ProductDescription")
	az := c.p.str("AvailabilityZone")
	start, end := c.p.timeOr("StartTime"), c.p.timeOr("EndTime")
	fs := c.p.filters()
	dry := c.p.boolOr("DryRun", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	if dry {
		return nil, errDryRun()
	}
	limit, err := maxResults(c.p, 1, 1000)
	if err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 1000
	}
	if end.IsZero() || end.After(c.now) {
		end = c.now
	}
	if !start.IsZero() && start.After(end) {
		return nil, errInvalidParameterValue("The start time must be before the end time.")
	}
	for _, t := range types {
		if r.types[t] == nil {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for InstanceType.", t))
		}
	}
	for _, f := range fs {
		switch f.name {
		case "availability-zone", "instance-type", "product-description", "spot-price", "timestamp":
		default:
			return nil, invalidFilter(f.name)
		}
	}
	horizon := c.now.Add(-90 * 24 * time.Hour)
	var items []spotPriceItem
	for _, t := range r.typeList {
		if len(types) > 0 && !contains(types, t.name) {
			continue
		}
		for _, zone := range r.azs() {
			if az != "" && zone != az {
				continue
			}
			pts := r.spotPoints(t, zone)
			var kept []pricePoint
			for i, p := range pts {
				if p.at.After(end) {
					break
				}
				// Before StartTime, only the change in effect at StartTime.
				if start.IsZero() || !p.at.Before(start) || i+1 == len(pts) || pts[i+1].at.After(start) {
					kept = append(kept, p)
				}
			}
			for _, prod := range spotProducts {
				if len(products) > 0 && !contains(products, prod) {
					continue
				}
				for _, p := range kept {
					at := p.at
					if at.Before(horizon) {
						at = horizon // the oldest point EC2 still shows
					}
					items = append(items, spotPriceItem{az: zone, typ: t.name, product: prod, price: p.price, at: at})
				}
			}
		}
	}
	var out []spotPriceItem
	for _, it := range items {
		ok := true
		for _, f := range fs {
			var v string
			switch f.name {
			case "availability-zone":
				v = it.az
			case "instance-type":
				v = it.typ
			case "product-description":
				v = it.product
			case "spot-price":
				v = formatPrice(it.price)
			case "timestamp":
				v = it.at.UTC().Format(time.RFC3339)
			}
			if !matchAny(f.values, v) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, it)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return paginate(c.p, "sph", out, limit, func(it spotPriceItem) spotPriceXML {
		return spotPriceXML{AvailabilityZone: it.az, InstanceType: it.typ, ProductDescription: it.product,
			SpotPrice: formatPrice(it.price), Timestamp: ts(it.at)}
	}, func(items []spotPriceXML, next string) any {
		return &describeSpotPriceHistoryXML{Items: items, NextToken: next}
	})
}

// ---------------------------------------------------------------------------
// Price List Query API: GetProducts

// regionNames are the Price List's location names of the regions the
// simulator may be named after (Price List attribute "location").
var regionNames = map[string]string{
	"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
	"us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)",
	"ap-south-1": "Asia Pacific (Mumbai)", "ap-northeast-1": "Asia Pacific (Tokyo)",
}

type priceFilter struct {
	Type  string `json:"Type"`
	Field string `json:"Field"`
	Value string `json:"Value"`
}

type getProductsInput struct {
	ServiceCode   string        `json:"ServiceCode"`
	Filters       []priceFilter `json:"Filters"`
	FormatVersion string        `json:"FormatVersion"`
	NextToken     string        `json:"NextToken"`
	MaxResults    *int          `json:"MaxResults"`
}

type getProductsOutput struct {
	FormatVersion string   `json:"FormatVersion"`
	NextToken     *string  `json:"NextToken,omitempty"`
	PriceList     []string `json:"PriceList"`
}

// pricingInvalidParameter is the Price List API's error for a bad
// parameter.
func pricingInvalidParameter(msg string) *APIError {
	return &APIError{Code: "InvalidParameterException", Message: msg, Status: 400}
}

// products are the Price List's AmazonEC2 products of the catalogue: for
// each type, the on-demand Linux product with shared tenancy, no
// pre-installed software and capacitystatus Used, and the same with
// capacitystatus UnusedCapacityReservation and AllocatedCapacityReservation
// (what a query without that filter gets besides, as from AWS).
func (r *Region) products() []map[string]any {
	var out []map[string]any
	location := regionNames[r.name]
	if location == "" {
		location = r.name
	}
	for _, t := range r.typeList {
		for i, cs := range []string{"Used", "UnusedCapacityReservation", "AllocatedCapacityReservation"} {
			sku := fmt.Sprintf("SIM%s%d", strings.ToUpper(strings.ReplaceAll(t.name, ".", "")), i)
			price := t.price
			if cs == "AllocatedCapacityReservation" {
				price = 0 // billed through the reservation
			}
			attrs := map[string]string{
				"servicecode": "AmazonEC2", "instanceType": t.name, "instanceFamily": "General purpose",
				"vcpu": strconv.Itoa(t.vcpus), "memory": fmt.Sprintf("%g GiB", float64(t.memoryMiB)/1024),
				"location": location, "locationType": "AWS Region", "regionCode": r.name,
				"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
				"licenseModel": "No License required", "capacitystatus": cs, "marketoption": "OnDemand",
				"usagetype": "BoxUsage:" + t.name, "operation": "RunInstances", "physicalProcessor": "Simulated",
			}
			term := "JRTCKXETXF" // the on-demand offer term code
			out = append(out, map[string]any{
				"product":     map[string]any{"productFamily": "Compute Instance", "attributes": attrs, "sku": sku},
				"serviceCode": "AmazonEC2",
				"terms": map[string]any{"OnDemand": map[string]any{
					sku + "." + term: map[string]any{
						"offerTermCode": term, "sku": sku, "effectiveDate": "2025-01-01T00:00:00Z", "termAttributes": map[string]string{},
						"priceDimensions": map[string]any{
							sku + "." + term + ".6YS6EN2CT7": map[string]any{
								"rateCode": sku + "." + term + ".6YS6EN2CT7", "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
								"description":  fmt.Sprintf("$%.4f per On Demand Linux %s Instance Hour", price, t.name),
								"pricePerUnit": map[string]string{"USD": strconv.FormatFloat(price, 'f', 10, 64)},
								"appliesTo":    []string{},
							},
						},
					},
				}},
				"version":         "20250101000000",
				"publicationDate": "2025-01-01T00:00:00Z",
			})
		}
	}
	return out
}

// getProducts answers the Price List Query API's GetProducts (AWS Price
// List Service API Reference, "GetProducts"; "Filter": TERM_MATCH,
// EQUALS, CONTAINS, ANY_OF, NONE_OF on a product attribute, case
// insensitive for the value). Only ServiceCode AmazonEC2 has products
// here; PriceList entries are JSON documents in strings, as AWS sends
// them; MaxResults 1-100.
func (r *Region) getProducts(c *call) (any, error) {
	var in getProductsInput
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if in.ServiceCode == "" {
		return nil, pricingInvalidParameter("Input validation failed: ServiceCode is required")
	}
	if in.FormatVersion != "" && in.FormatVersion != "aws_v1" {
		return nil, pricingInvalidParameter(fmt.Sprintf("Invalid FormatVersion: %s", in.FormatVersion))
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, pricingInvalidParameter("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100 and greater than or equal to 1")
		}
		limit = *in.MaxResults
	}
	for _, f := range in.Filters {
		switch f.Type {
		case "TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF":
		default:
			return nil, pricingInvalidParameter(fmt.Sprintf("1 validation error detected: Value '%s' at 'filters.member.type' failed to satisfy constraint: Member must satisfy enum value set: [TERM_MATCH, EQUALS, CONTAINS, ANY_OF, NONE_OF]", f.Type))
		}
		if f.Field == "" {
			return nil, pricingInvalidParameter("Input validation failed: Filter Field is required")
		}
	}
	var list []string
	if in.ServiceCode == "AmazonEC2" {
		for _, p := range r.products() {
			prod := p["product"].(map[string]any)
			attrs := prod["attributes"].(map[string]string)
			if !productMatches(attrs, prod, in.Filters) {
				continue
			}
			b, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			list = append(list, string(b))
		}
	}
	start := 0
	if in.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			return nil, &APIError{Code: "InvalidNextTokenException", Message: "The pagination token is invalid. Try again without a pagination token.", Status: 400}
		}
		start = min(n, len(list))
	}
	out := getProductsOutput{FormatVersion: "aws_v1", PriceList: []string{}}
	end := min(start+limit, len(list))
	out.PriceList = append(out.PriceList, list[start:end]...)
	if end < len(list) {
		tok := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		out.NextToken = &tok
	}
	return out, nil
}

func productMatches(attrs map[string]string, prod map[string]any, fs []priceFilter) bool {
	for _, f := range fs {
		v, ok := attrs[f.Field]
		switch f.Field {
		case "sku":
			v, ok = prod["sku"].(string), true
		case "productFamily":
			v, ok = prod["productFamily"].(string), true
		}
		want := strings.ToLower(f.Value)
		got := strings.ToLower(v)
		switch f.Type {
		case "TERM_MATCH", "EQUALS":
			if !ok || got != want {
				return false
			}
		case "CONTAINS":
			if !ok || !strings.Contains(got, want) {
				return false
			}
		case "ANY_OF", "NONE_OF":
			hit := false
			for _, w := range strings.Split(want, ",") {
				if ok && got == strings.TrimSpace(w) {
					hit = true
				}
			}
			if hit != (f.Type == "ANY_OF") {
				return false
			}
		}
	}
	return true
}

func (r *Region) registerPricing() {
	r.ec2["DescribeSpotPriceHistory"] = r.describeSpotPriceHistory
	r.pricing = map[string]handler{"GetProducts": r.getProducts}
}
