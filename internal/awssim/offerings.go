package awssim

import (
	"fmt"
)

// DescribeInstanceTypeOfferings (doc.go, "Instance type offerings").

type instanceTypeOfferingXML struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

type describeInstanceTypeOfferingsXML struct {
	Offerings []instanceTypeOfferingXML `xml:"instanceTypeOfferingSet>item"`
	NextToken string                    `xml:"nextToken,omitempty"`
}

// offering is one instance type in one location.
type offering struct{ typ, location string }

func (r *Region) describeInstanceTypeOfferings(c *call) (any, error) {
	lt := c.p.str("LocationType")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 5, 1000)
	if err != nil {
		return nil, err
	}
	// Every type the region has is offered in each of its zones.
	var locations []string
	switch lt {
	case "", "region":
		lt = "region"
		locations = []string{r.name}
	case "availability-zone":
		for _, s := range r.subnets {
			locations = append(locations, s.az)
		}
	case "availability-zone-id":
		for _, s := range r.subnets {
			locations = append(locations, s.azID)
		}
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Value (%s) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id, outpost", lt))
	}
	var list []offering
	for _, loc := range locations {
		for _, t := range r.typeList {
			list = append(list, offering{t.name, loc})
		}
	}
	for _, f := range fs {
		var field func(offering) string
		switch f.name {
		case "instance-type":
			field = func(o offering) string { return o.typ }
		case "location":
			field = func(o offering) string { return o.location }
		default:
			return nil, invalidFilter(f.name)
		}
		var kept []offering
		for _, o := range list {
			if matchAny(f.values, field(o)) {
				kept = append(kept, o)
			}
		}
		list = kept
	}
	return paginate(c.p, "o", list, limit, func(o offering) instanceTypeOfferingXML {
		return instanceTypeOfferingXML{InstanceType: o.typ, LocationType: lt, Location: o.location}
	}, func(items []instanceTypeOfferingXML, next string) any {
		return &describeInstanceTypeOfferingsXML{Offerings: items, NextToken: next}
	})
}
