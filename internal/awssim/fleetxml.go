package awssim

// XML shapes shared by EC2 Fleet and Spot Fleet answers.

type fleetLTSpecXML struct {
	LaunchTemplateID   string `xml:"launchTemplateId,omitempty"`
	LaunchTemplateName string `xml:"launchTemplateName,omitempty"`
	Version            string `xml:"version,omitempty"`
}

// fleetOverridesXML is FleetLaunchTemplateOverrides (EC2 Fleet, MaxPrice)
// and LaunchTemplateOverrides (Spot Fleet, SpotPrice).
type fleetOverridesXML struct {
	InstanceType     string   `xml:"instanceType,omitempty"`
	MaxPrice         string   `xml:"maxPrice,omitempty"`
	SpotPrice        string   `xml:"spotPrice,omitempty"`
	SubnetID         string   `xml:"subnetId,omitempty"`
	AvailabilityZone string   `xml:"availabilityZone,omitempty"`
	WeightedCapacity *float64 `xml:"weightedCapacity,omitempty"`
	Priority         *float64 `xml:"priority,omitempty"`
	ImageID          string   `xml:"imageId,omitempty"`
}

type ltAndOverridesXML struct {
	LaunchTemplateSpecification fleetLTSpecXML     `xml:"launchTemplateSpecification"`
	Overrides                   *fleetOverridesXML `xml:"overrides,omitempty"`
}

// overridesXML renders a pool's overrides; spotPrice selects the Spot
// Fleet spelling of the price.
func (fp *fleetPool) overridesXML(spotFleet bool) *fleetOverridesXML {
	o := &fleetOverridesXML{InstanceType: fp.ovType, SubnetID: fp.ovSubnet, AvailabilityZone: fp.ovAZ,
		WeightedCapacity: fp.ovWeight, Priority: fp.ovPriority, ImageID: fp.ovImage}
	if spotFleet {
		o.SpotPrice = fp.ovMaxPrice
	} else {
		o.MaxPrice = fp.ovMaxPrice
	}
	if *o == (fleetOverridesXML{}) {
		return nil
	}
	return o
}

func (fp *fleetPool) ltSpecXML() fleetLTSpecXML {
	return fleetLTSpecXML{LaunchTemplateID: fp.ltID, LaunchTemplateName: fp.ltName, Version: fp.ltVersion}
}

func (fp *fleetPool) ltAndOverrides() ltAndOverridesXML {
	return ltAndOverridesXML{LaunchTemplateSpecification: fp.ltSpecXML(), Overrides: fp.overridesXML(false)}
}

// fleetInstancesXML is CreateFleetInstance / DescribeFleetsInstances.
type fleetInstancesXML struct {
	LaunchTemplateAndOverrides ltAndOverridesXML `xml:"launchTemplateAndOverrides"`
	Lifecycle                  string            `xml:"lifecycle"`
	InstanceIDs                []string          `xml:"instanceIds>item"`
	InstanceType               string            `xml:"instanceType"`
	Platform                   string            `xml:"platform,omitempty"`
}

// fleetErrorXML is CreateFleetError / DescribeFleetError.
type fleetErrorXML struct {
	LaunchTemplateAndOverrides ltAndOverridesXML `xml:"launchTemplateAndOverrides"`
	Lifecycle                  string            `xml:"lifecycle"`
	ErrorCode                  string            `xml:"errorCode"`
	ErrorMessage               string            `xml:"errorMessage"`
}

func lifecycle(spot bool) string {
	if spot {
		return "spot"
	}
	return "on-demand"
}

// groupLaunched groups a fill's instances per pool and lifecycle, as
// CreateFleet answers them.
func groupLaunched(res fillResult, spot bool) []fleetInstancesXML {
	var out []fleetInstancesXML
	at := map[*fleetPool]int{}
	for i, in := range res.launched {
		fp := res.pools[i]
		j, ok := at[fp]
		if !ok {
			j = len(out)
			at[fp] = j
			out = append(out, fleetInstancesXML{LaunchTemplateAndOverrides: fp.ltAndOverrides(), Lifecycle: lifecycle(spot), InstanceType: in.typ.name})
		}
		out[j].InstanceIDs = append(out[j].InstanceIDs, in.id)
	}
	return out
}

func fleetErrorsXML(fails []fillFailure) []fleetErrorXML {
	out := make([]fleetErrorXML, 0, len(fails))
	for _, f := range fails {
		out = append(out, fleetErrorXML{LaunchTemplateAndOverrides: f.pool.ltAndOverrides(), Lifecycle: lifecycle(f.spot), ErrorCode: f.err.Code, ErrorMessage: f.err.Message})
	}
	return out
}

type targetCapXML struct {
	TotalTargetCapacity       int    `xml:"totalTargetCapacity"`
	OnDemandTargetCapacity    int    `xml:"onDemandTargetCapacity"`
	SpotTargetCapacity        int    `xml:"spotTargetCapacity"`
	DefaultTargetCapacityType string `xml:"defaultTargetCapacityType,omitempty"`
	TargetCapacityUnitType    string `xml:"targetCapacityUnitType,omitempty"`
}

type fleetLTConfigXML struct {
	LaunchTemplateSpecification fleetLTSpecXML      `xml:"launchTemplateSpecification"`
	Overrides                   []fleetOverridesXML `xml:"overrides>item"`
}

type spotOptionsXML struct {
	AllocationStrategy      string `xml:"allocationStrategy,omitempty"`
	InstancePoolsToUseCount int    `xml:"instancePoolsToUseCount,omitempty"`
}

type onDemandOptionsXML struct {
	AllocationStrategy string `xml:"allocationStrategy,omitempty"`
}

// fleetDataXML is one item of DescribeFleets' fleetSet.
type fleetDataXML struct {
	ActivityStatus                   string              `xml:"activityStatus,omitempty"`
	ClientToken                      string              `xml:"clientToken,omitempty"`
	CreateTime                       string              `xml:"createTime"`
	Errors                           []fleetErrorXML     `xml:"errorSet>item"`
	ExcessCapacityTerminationPolicy  string              `xml:"excessCapacityTerminationPolicy,omitempty"`
	FleetID                          string              `xml:"fleetId"`
	FleetState                       string              `xml:"fleetState"`
	FulfilledCapacity                float64             `xml:"fulfilledCapacity"`
	FulfilledOnDemandCapacity        float64             `xml:"fulfilledOnDemandCapacity"`
	Instances                        []fleetInstancesXML `xml:"fleetInstanceSet>item"`
	LaunchTemplateConfigs            []fleetLTConfigXML  `xml:"launchTemplateConfigs>item"`
	OnDemandOptions                  onDemandOptionsXML  `xml:"onDemandOptions"`
	ReplaceUnhealthyInstances        bool                `xml:"replaceUnhealthyInstances"`
	SpotOptions                      spotOptionsXML      `xml:"spotOptions"`
	Tags                             []tagXML            `xml:"tagSet>item"`
	TargetCapacitySpecification      targetCapXML        `xml:"targetCapacitySpecification"`
	TerminateInstancesWithExpiration bool                `xml:"terminateInstancesWithExpiration"`
	Type                             string              `xml:"type"`
	ValidFrom                        string              `xml:"validFrom,omitempty"`
	ValidUntil                       string              `xml:"validUntil,omitempty"`
}

type activeInstanceXML struct {
	InstanceID            string `xml:"instanceId"`
	InstanceType          string `xml:"instanceType"`
	SpotInstanceRequestID string `xml:"spotInstanceRequestId,omitempty"`
	InstanceHealth        string `xml:"instanceHealth"`
}

func activeXML(in *instance) activeInstanceXML {
	return activeInstanceXML{InstanceID: in.id, InstanceType: in.typ.name, SpotInstanceRequestID: in.spotRequestID, InstanceHealth: "healthy"}
}
