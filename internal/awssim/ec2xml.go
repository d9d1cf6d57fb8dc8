package awssim

import (
	"sort"
)

// XML shapes of EC2 answers, reusable by every EC2 action.

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagsXML renders a tag map sorted by key.
func tagsXML(m map[string]string) []tagXML {
	if len(m) == 0 {
		return nil
	}
	out := make([]tagXML, 0, len(m))
	for k, v := range m {
		out = append(out, tagXML{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func stateOf(name string) stateXML { return stateXML{Code: stateCodes[name], Name: name} }

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type placementXML struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

type stateReasonXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type ebsInstanceXML struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type instanceBDMXML struct {
	DeviceName string         `xml:"deviceName"`
	Ebs        ebsInstanceXML `xml:"ebs"`
}

type iamProfileXML struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type cpuOptionsXML struct {
	CoreCount      int `xml:"coreCount"`
	ThreadsPerCore int `xml:"threadsPerCore"`
}

type monitoringXML struct {
	State string `xml:"state"`
}

// instanceXML is one item of instancesSet (DescribeInstances,
// RunInstances).
type instanceXML struct {
	InstanceID            string           `xml:"instanceId"`
	ImageID               string           `xml:"imageId"`
	InstanceState         stateXML         `xml:"instanceState"`
	PrivateDNSName        string           `xml:"privateDnsName"`
	DNSName               string           `xml:"dnsName"`
	Reason                string           `xml:"reason"`
	KeyName               string           `xml:"keyName,omitempty"`
	AmiLaunchIndex        int              `xml:"amiLaunchIndex"`
	InstanceType          string           `xml:"instanceType"`
	LaunchTime            string           `xml:"launchTime"`
	Placement             placementXML     `xml:"placement"`
	Monitoring            monitoringXML    `xml:"monitoring"`
	SubnetID              string           `xml:"subnetId,omitempty"`
	VpcID                 string           `xml:"vpcId,omitempty"`
	PrivateIPAddress      string           `xml:"privateIpAddress,omitempty"`
	SourceDestCheck       bool             `xml:"sourceDestCheck"`
	Groups                []groupXML       `xml:"groupSet>item"`
	StateReason           *stateReasonXML  `xml:"stateReason,omitempty"`
	Architecture          string           `xml:"architecture"`
	RootDeviceType        string           `xml:"rootDeviceType"`
	RootDeviceName        string           `xml:"rootDeviceName"`
	BlockDeviceMappings   []instanceBDMXML `xml:"blockDeviceMapping>item"`
	InstanceLifecycle     string           `xml:"instanceLifecycle,omitempty"`
	SpotInstanceRequestID string           `xml:"spotInstanceRequestId,omitempty"`
	VirtualizationType    string           `xml:"virtualizationType"`
	ClientToken           string           `xml:"clientToken"`
	Tags                  []tagXML         `xml:"tagSet>item"`
	Hypervisor            string           `xml:"hypervisor"`
	IamInstanceProfile    *iamProfileXML   `xml:"iamInstanceProfile,omitempty"`
	EbsOptimized          bool             `xml:"ebsOptimized"`
	EnaSupport            bool             `xml:"enaSupport"`
	CPUOptions            cpuOptionsXML    `xml:"cpuOptions"`
	PlatformDetails       string           `xml:"platformDetails"`
	UsageOperation        string           `xml:"usageOperation"`
}

// instanceXML renders an instance as EC2 does. Call with the lock held.
func (r *Region) instanceXML(in *instance) instanceXML {
	x := instanceXML{
		InstanceID:         in.id,
		ImageID:            in.imageID,
		InstanceState:      stateOf(in.state),
		Reason:             in.transitionNote,
		KeyName:            in.keyName,
		AmiLaunchIndex:     in.launchIndex,
		InstanceType:       in.typ.name,
		LaunchTime:         ts(in.launchTime),
		Placement:          placementXML{AvailabilityZone: in.subnet.az, Tenancy: "default"},
		Monitoring:         monitoringXML{State: "disabled"},
		SourceDestCheck:    true,
		Architecture:       in.typ.arch,
		RootDeviceType:     "ebs",
		RootDeviceName:     "/dev/xvda",
		VirtualizationType: "hvm",
		ClientToken:        in.clientToken,
		Tags:               tagsXML(in.tags),
		Hypervisor:         "xen",
		EbsOptimized:       false,
		EnaSupport:         true,
		CPUOptions:         cpuOptionsXML{CoreCount: in.typ.cores, ThreadsPerCore: in.typ.threads},
		PlatformDetails:    "Linux/UNIX",
		UsageOperation:     "RunInstances",
	}
	if in.state != stateTerminated {
		x.PrivateDNSName = in.privateDNS
		x.PrivateIPAddress = in.privateIP.String()
		x.SubnetID = in.subnet.id
		x.VpcID = r.vpc.id
		for _, g := range in.sgIDs {
			name := g
			if sg := r.sgByID(g); sg != nil {
				name = sg.name
			}
			x.Groups = append(x.Groups, groupXML{GroupID: g, GroupName: name})
		}
		for _, v := range in.volumes {
			x.BlockDeviceMappings = append(x.BlockDeviceMappings, instanceBDMXML{DeviceName: v.device, Ebs: ebsInstanceXML{
				VolumeID: v.id, Status: "attached", AttachTime: ts(in.launchTime), DeleteOnTermination: v.deleteOnTermination}})
		}
	}
	if in.reason.code != "" {
		x.StateReason = &stateReasonXML{Code: in.reason.code, Message: in.reason.message}
	}
	if in.spot {
		x.InstanceLifecycle = "spot"
		x.SpotInstanceRequestID = in.spotRequestID
	}
	if in.iamProfile != "" {
		arn := in.iamProfile
		if len(arn) < 4 || arn[:4] != "arn:" {
			arn = "arn:aws:iam::" + AccountID + ":instance-profile/" + arn
		}
		x.IamInstanceProfile = &iamProfileXML{Arn: arn, ID: "AIPA" + in.id[2:]}
	}
	return x
}
