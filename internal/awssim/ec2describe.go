package awssim

import (
	"fmt"
	"strconv"
	"strings"
)

// ---------------------------------------------------------------------------
// DescribeInstanceTypes

type vcpuInfoXML struct {
	DefaultVCpus          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type processorInfoXML struct {
	Architectures []string `xml:"supportedArchitectures>item"`
	ClockGHz      float64  `xml:"sustainedClockSpeedInGhz"`
	Manufacturer  string   `xml:"manufacturer"`
}

type instanceTypeXML struct {
	InstanceType      string           `xml:"instanceType"`
	CurrentGeneration bool             `xml:"currentGeneration"`
	FreeTierEligible  bool             `xml:"freeTierEligible"`
	UsageClasses      []string         `xml:"supportedUsageClasses>item"`
	RootDeviceTypes   []string         `xml:"supportedRootDeviceTypes>item"`
	Virtualization    []string         `xml:"supportedVirtualizationTypes>item"`
	BareMetal         bool             `xml:"bareMetal"`
	Hypervisor        string           `xml:"hypervisor"`
	ProcessorInfo     processorInfoXML `xml:"processorInfo"`
	VCPUInfo          vcpuInfoXML      `xml:"vCpuInfo"`
	MemoryMiB         int              `xml:"memoryInfo>sizeInMiB"`
	Burstable         bool             `xml:"burstablePerformanceSupported"`
	SupportedInRegion bool             `xml:"supportedInRegion"`
}

type describeInstanceTypesXML struct {
	Types     []instanceTypeXML `xml:"instanceTypeSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

func (t *instanceType) xml() instanceTypeXML {
	man := "Intel"
	if t.arch == "arm64" {
		man = "AWS"
	}
	return instanceTypeXML{
		InstanceType: t.name, CurrentGeneration: true, FreeTierEligible: t.name == "t3.micro",
		UsageClasses: []string{"on-demand", "spot"}, RootDeviceTypes: []string{"ebs"}, Virtualization: []string{"hvm"},
		Hypervisor:    "nitro",
		ProcessorInfo: processorInfoXML{Architectures: []string{t.arch}, ClockGHz: t.clockGHz, Manufacturer: man},
		VCPUInfo:      vcpuInfoXML{DefaultVCpus: t.vcpus, DefaultCores: t.cores, DefaultThreadsPerCore: t.threads},
		MemoryMiB:     t.memoryMiB, Burstable: strings.HasPrefix(t.name, "t"), SupportedInRegion: true,
	}
}

func (r *Region) describeInstanceTypes(c *call) (any, error) {
	names := c.p.list("InstanceType")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 5, 100)
	if err != nil {
		return nil, err
	}
	var list []*instanceType
	if len(names) > 0 {
		var missing []string
		for _, n := range names {
			if t := r.types[n]; t != nil {
				list = append(list, t)
			} else {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, &APIError{Code: "InvalidInstanceType", Message: fmt.Sprintf("The following supplied instance types do not exist: [%s]", strings.Join(missing, ", ")), Status: 400}
		}
	} else {
		list = r.typeList
	}
	for _, f := range fs {
		var field func(*instanceType) string
		switch f.name {
		case "instance-type":
			field = func(t *instanceType) string { return t.name }
		case "processor-info.supported-architecture":
			field = func(t *instanceType) string { return t.arch }
		case "vcpu-info.default-vcpus":
			field = func(t *instanceType) string { return strconv.Itoa(t.vcpus) }
		case "memory-info.size-in-mib":
			field = func(t *instanceType) string { return strconv.Itoa(t.memoryMiB) }
		case "current-generation":
			field = func(*instanceType) string { return "true" }
		default:
			return nil, invalidFilter(f.name)
		}
		var kept []*instanceType
		for _, t := range list {
			if matchAny(f.values, field(t)) {
				kept = append(kept, t)
			}
		}
		list = kept
	}
	return paginate(c.p, "t", list, limit, func(t *instanceType) instanceTypeXML { return t.xml() },
		func(items []instanceTypeXML, next string) any {
			return &describeInstanceTypesXML{Types: items, NextToken: next}
		})
}

// paginate pages a stable list by index: NextToken encodes the next index.
func paginate[T any, X any](p params, kind string, list []T, limit int, conv func(T) X, wrap func([]X, string) any) (any, error) {
	start := 0
	if tok := p.str("NextToken"); tok != "" {
		n, err := decodeToken(kind, tok)
		if err != nil {
			return nil, err
		}
		start = int(min(n, int64(len(list))))
	}
	end := len(list)
	next := ""
	if limit > 0 && start+limit < end {
		end = start + limit
		next = encodeToken(kind, int64(end))
	}
	items := make([]X, 0, end-start)
	for _, t := range list[start:end] {
		items = append(items, conv(t))
	}
	return wrap(items, next), nil
}

// ---------------------------------------------------------------------------
// DescribeImages

type imageXML struct {
	ImageID            string   `xml:"imageId"`
	ImageLocation      string   `xml:"imageLocation"`
	ImageState         string   `xml:"imageState"`
	ImageOwnerID       string   `xml:"imageOwnerId"`
	ImageOwnerAlias    string   `xml:"imageOwnerAlias"`
	CreationDate       string   `xml:"creationDate"`
	IsPublic           bool     `xml:"isPublic"`
	Architecture       string   `xml:"architecture"`
	ImageType          string   `xml:"imageType"`
	Name               string   `xml:"name"`
	Description        string   `xml:"description"`
	RootDeviceType     string   `xml:"rootDeviceType"`
	RootDeviceName     string   `xml:"rootDeviceName"`
	VirtualizationType string   `xml:"virtualizationType"`
	Hypervisor         string   `xml:"hypervisor"`
	EnaSupport         bool     `xml:"enaSupport"`
	PlatformDetails    string   `xml:"platformDetails"`
	UsageOperation     string   `xml:"usageOperation"`
	Tags               []tagXML `xml:"tagSet>item"`
}

type describeImagesXML struct {
	Images    []imageXML `xml:"imagesSet>item"`
	NextToken string     `xml:"nextToken,omitempty"`
}

func (r *Region) describeImages(c *call) (any, error) {
	ids := c.p.list("ImageId")
	owners := c.p.list("Owner")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 5, 1000)
	if err != nil {
		return nil, err
	}
	var list []*image
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if !validID(id, "ami-") {
				return nil, amiError(id)
			}
			if im := r.images[id]; im != nil {
				list = append(list, im)
			} else {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, &APIError{Code: "InvalidAMIID.NotFound", Message: fmt.Sprintf("The image ids '[%s]' do not exist", strings.Join(missing, ", ")), Status: 400}
		}
	} else {
		list = r.imgList
	}
	keep := func(im *image) bool {
		if len(owners) > 0 && !contains(owners, "amazon") && !contains(owners, im.owner) {
			return false
		}
		for _, f := range fs {
			var v string
			switch f.name {
			case "name":
				v = im.name
			case "image-id":
				v = im.id
			case "architecture":
				v = im.arch
			case "state":
				v = "available"
			case "owner-id":
				v = im.owner
			case "owner-alias":
				v = "amazon"
			case "root-device-type":
				v = "ebs"
			case "virtualization-type":
				v = "hvm"
			case "is-public":
				v = "true"
			default:
				return false
			}
			if !matchAny(f.values, v) {
				return false
			}
		}
		return true
	}
	for _, f := range fs {
		switch f.name {
		case "name", "image-id", "architecture", "state", "owner-id", "owner-alias", "root-device-type", "virtualization-type", "is-public":
		default:
			return nil, invalidFilter(f.name)
		}
	}
	var kept []*image
	for _, im := range list {
		if keep(im) {
			kept = append(kept, im)
		}
	}
	return paginate(c.p, "ami", kept, limit, func(im *image) imageXML {
		return imageXML{
			ImageID: im.id, ImageLocation: "amazon/" + im.name, ImageState: "available", ImageOwnerID: im.owner,
			ImageOwnerAlias: "amazon", CreationDate: ts(im.created), IsPublic: true, Architecture: im.arch,
			ImageType: "machine", Name: im.name, Description: im.description, RootDeviceType: "ebs",
			RootDeviceName: im.rootDevice, VirtualizationType: "hvm", Hypervisor: "xen", EnaSupport: true,
			PlatformDetails: "Linux/UNIX", UsageOperation: "RunInstances",
		}
	}, func(items []imageXML, next string) any { return &describeImagesXML{Images: items, NextToken: next} })
}

// ---------------------------------------------------------------------------
// DescribeSubnets, DescribeSecurityGroups

type subnetXML struct {
	SubnetID                string   `xml:"subnetId"`
	SubnetArn               string   `xml:"subnetArn"`
	State                   string   `xml:"state"`
	VpcID                   string   `xml:"vpcId"`
	OwnerID                 string   `xml:"ownerId"`
	CidrBlock               string   `xml:"cidrBlock"`
	AvailableIPAddressCount int      `xml:"availableIpAddressCount"`
	AvailabilityZone        string   `xml:"availabilityZone"`
	AvailabilityZoneID      string   `xml:"availabilityZoneId"`
	DefaultForAz            bool     `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool     `xml:"mapPublicIpOnLaunch"`
	Tags                    []tagXML `xml:"tagSet>item"`
}

type describeSubnetsXML struct {
	Subnets   []subnetXML `xml:"subnetSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

func (r *Region) describeSubnets(c *call) (any, error) {
	ids := c.p.list("SubnetId")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	list, err := selectIDs(ids, r.subnets, func(id string) (*subnet, error) {
		if s := r.subnetBy[id]; s != nil {
			return s, nil
		}
		return nil, &APIError{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", id), Status: 400}
	})
	if err != nil {
		return nil, err
	}
	out := &describeSubnetsXML{}
	for _, s := range list {
		ok, err := filterMatch(fs, s.tags, true, func(name string) (string, bool) {
			switch name {
			case "subnet-id":
				return s.id, true
			case "availability-zone":
				return s.az, true
			case "availability-zone-id":
				return s.azID, true
			case "vpc-id":
				return r.vpc.id, true
			case "cidr-block", "cidr":
				return s.cidr.String(), true
			case "default-for-az":
				return strconv.FormatBool(s.dflt), true
			case "state":
				return "available", true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out.Subnets = append(out.Subnets, subnetXML{
				SubnetID: s.id, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", r.name, AccountID, s.id),
				State: "available", VpcID: r.vpc.id, OwnerID: AccountID, CidrBlock: s.cidr.String(),
				AvailableIPAddressCount: s.availableIPs(), AvailabilityZone: s.az, AvailabilityZoneID: s.azID,
				DefaultForAz: s.dflt, Tags: tagsXML(s.tags),
			})
		}
	}
	return out, nil
}

type securityGroupXML struct {
	OwnerID     string `xml:"ownerId"`
	GroupName   string `xml:"groupName"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"groupDescription"`
	VpcID       string `xml:"vpcId"`
	Arn         string `xml:"securityGroupArn"`
}

type describeSecurityGroupsXML struct {
	Groups    []securityGroupXML `xml:"securityGroupInfo>item"`
	NextToken string             `xml:"nextToken,omitempty"`
}

func (r *Region) describeSecurityGroups(c *call) (any, error) {
	ids := c.p.list("GroupId")
	names := c.p.list("GroupName")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if r.sgByID(id) == nil {
			return nil, &APIError{Code: "InvalidGroup.NotFound", Message: fmt.Sprintf("The security group '%s' does not exist", id), Status: 400}
		}
	}
	for _, n := range names {
		found := false
		for _, g := range r.sgs {
			found = found || g.name == n
		}
		if !found {
			return nil, &APIError{Code: "InvalidGroup.NotFound", Message: fmt.Sprintf("The security group '%s' does not exist in default VPC '%s'", n, r.vpc.id), Status: 400}
		}
	}
	out := &describeSecurityGroupsXML{}
	for _, g := range r.sgs {
		if len(ids) > 0 && !contains(ids, g.id) || len(names) > 0 && !contains(names, g.name) {
			continue
		}
		ok, err := filterMatch(fs, nil, false, func(name string) (string, bool) {
			switch name {
			case "group-id":
				return g.id, true
			case "group-name":
				return g.name, true
			case "vpc-id":
				return r.vpc.id, true
			case "description":
				return g.description, true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out.Groups = append(out.Groups, securityGroupXML{OwnerID: AccountID, GroupName: g.name, GroupID: g.id, Description: g.description, VpcID: r.vpc.id,
				Arn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", r.name, AccountID, g.id)})
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// DescribeSpotInstanceRequests

type spotStatusXML struct {
	Code       string `xml:"code"`
	UpdateTime string `xml:"updateTime"`
	Message    string `xml:"message"`
}

type spotLaunchSpecXML struct {
	ImageID      string `xml:"imageId"`
	InstanceType string `xml:"instanceType"`
	Placement    struct {
		AvailabilityZone string `xml:"availabilityZone"`
	} `xml:"placement"`
	SubnetID string `xml:"subnetId"`
}

type spotRequestXML struct {
	ID                       string            `xml:"spotInstanceRequestId"`
	SpotPrice                string            `xml:"spotPrice"`
	Type                     string            `xml:"type"`
	State                    string            `xml:"state"`
	Status                   spotStatusXML     `xml:"status"`
	LaunchSpecification      spotLaunchSpecXML `xml:"launchSpecification"`
	InstanceID               string            `xml:"instanceId,omitempty"`
	CreateTime               string            `xml:"createTime"`
	ProductDescription       string            `xml:"productDescription"`
	LaunchedAvailabilityZone string            `xml:"launchedAvailabilityZone"`
	InterruptionBehavior     string            `xml:"instanceInterruptionBehavior"`
	Tags                     []tagXML          `xml:"tagSet>item"`
}

type describeSpotRequestsXML struct {
	Requests  []spotRequestXML `xml:"spotInstanceRequestSet>item"`
	NextToken string           `xml:"nextToken,omitempty"`
}

func (r *Region) spotRequestXML(sr *spotRequest) spotRequestXML {
	x := spotRequestXML{
		ID: sr.id, SpotPrice: sr.spotPrice, Type: sr.reqType, State: sr.state,
		Status:     spotStatusXML{Code: sr.statusCode, UpdateTime: ts(sr.statusTime), Message: sr.statusMsg},
		InstanceID: sr.instanceID, CreateTime: ts(sr.created), ProductDescription: "Linux/UNIX",
		LaunchedAvailabilityZone: sr.az, InterruptionBehavior: sr.behavior, Tags: tagsXML(sr.tags),
	}
	x.LaunchSpecification.ImageID = sr.imageID
	x.LaunchSpecification.InstanceType = sr.typ.name
	x.LaunchSpecification.Placement.AvailabilityZone = sr.az
	x.LaunchSpecification.SubnetID = sr.subnetID
	return x
}

func (r *Region) describeSpotInstanceRequests(c *call) (any, error) {
	ids := c.p.list("SpotInstanceRequestId")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 5, 1000)
	if err != nil {
		return nil, err
	}
	list, err := selectIDs(ids, r.spotOrder, func(id string) (*spotRequest, error) {
		if sr := r.spotReqs[id]; sr != nil && r.visible(sr.visibleAt) {
			return sr, nil
		}
		return nil, &APIError{Code: "InvalidSpotInstanceRequestID.NotFound", Message: fmt.Sprintf("The spot instance request ID '%s' does not exist", id), Status: 400}
	})
	if err != nil {
		return nil, err
	}
	var kept []*spotRequest
	for _, sr := range list {
		if !r.visible(sr.visibleAt) {
			continue
		}
		ok, err := filterMatch(fs, sr.tags, true, func(name string) (string, bool) {
			switch name {
			case "state":
				return sr.state, true
			case "status-code":
				return sr.statusCode, true
			case "instance-id":
				return sr.instanceID, true
			case "spot-instance-request-id":
				return sr.id, true
			case "launched-availability-zone":
				return sr.az, true
			case "type":
				return "one-time", true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, sr)
		}
	}
	return paginate(c.p, "sir", kept, limit, r.spotRequestXML, func(items []spotRequestXML, next string) any {
		return &describeSpotRequestsXML{Requests: items, NextToken: next}
	})
}
