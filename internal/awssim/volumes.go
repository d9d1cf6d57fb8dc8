package awssim

import (
	"fmt"
	"strconv"
)

// EBS volumes of instances (see doc.go, "Volumes"): each instance gets its
// root volume (/dev/xvda, deleted on termination) and one volume per other
// block device mapping it was launched with. They keep their tags
// (CreateTags on vol- ids) and are listed by DescribeVolumes.

type volume struct {
	id                  string
	device              string
	size                int
	vtype               string
	deleteOnTermination bool
	in                  *instance
	tags                map[string]string
}

// exists reports whether the volume is still there: while its instance
// is not terminated, and after that unless it is deleted on termination.
func (v *volume) exists() bool {
	return v.in.state != stateTerminated || !v.deleteOnTermination
}

// attached reports whether the volume is attached to its instance.
func (v *volume) attached() bool { return v.in.state != stateTerminated }

// addVolumes creates in's volumes (at launch, under the lock). Volume ids
// are derived from the instance id, as they always were in awssim's
// block device mappings.
func (r *Region) addVolumes(in *instance) {
	root := &volume{id: "vol-" + in.id[2:], device: "/dev/xvda", size: 8, vtype: "gp3", deleteOnTermination: true, in: in, tags: map[string]string{}}
	in.volumes = append(in.volumes, root)
	for i, bd := range in.blockDevices {
		if bd.deviceName == "/dev/xvda" {
			if bd.volumeSize > 0 {
				root.size = bd.volumeSize
			}
			if bd.volumeType != "" {
				root.vtype = bd.volumeType
			}
			continue
		}
		v := &volume{id: "vol-" + strconv.Itoa(i+1) + in.id[3:], device: bd.deviceName, size: bd.volumeSize, vtype: bd.volumeType,
			deleteOnTermination: bd.deleteOnTermination, in: in, tags: map[string]string{}}
		if v.vtype == "" {
			v.vtype = "gp2"
		}
		in.volumes = append(in.volumes, v)
	}
	for _, v := range in.volumes {
		r.volumes[v.id] = v
		r.volOrder = append(r.volOrder, v)
	}
}

// dropVolumes forgets the volumes of a purged instance that went with it.
func (r *Region) dropVolumes(in *instance) {
	for _, v := range in.volumes {
		if v.deleteOnTermination {
			delete(r.volumes, v.id)
		}
	}
	if len(r.volumes) < len(r.volOrder)/2 {
		out := r.volOrder[:0]
		for _, v := range r.volOrder {
			if r.volumes[v.id] == v {
				out = append(out, v)
			}
		}
		r.volOrder = out
	}
}

func volumeNotFound(id string) *APIError {
	return &APIError{Code: "InvalidVolume.NotFound", Message: fmt.Sprintf("The volume '%s' does not exist.", id), Status: 400}
}

// volumeByID finds a volume other calls can see: it exists and its
// instance is visible (eventual consistency).
func (r *Region) volumeByID(id string) (*volume, error) {
	if !validID(id, "vol-") {
		return nil, &APIError{Code: "InvalidVolumeID.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"vol-...\")", id), Status: 400}
	}
	v := r.volumes[id]
	if v == nil || !v.exists() || !r.visible(v.in.visibleAt) {
		return nil, volumeNotFound(id)
	}
	return v, nil
}

type volumeAttachmentXML struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type volumeXML struct {
	VolumeID         string                `xml:"volumeId"`
	Size             int                   `xml:"size"`
	AvailabilityZone string                `xml:"availabilityZone"`
	Status           string                `xml:"status"`
	CreateTime       string                `xml:"createTime"`
	Attachments      []volumeAttachmentXML `xml:"attachmentSet>item"`
	VolumeType       string                `xml:"volumeType"`
	Encrypted        bool                  `xml:"encrypted"`
	Tags             []tagXML              `xml:"tagSet>item"`
}

type describeVolumesXML struct {
	Volumes   []volumeXML `xml:"volumeSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

func (r *Region) volumeXML(v *volume) volumeXML {
	x := volumeXML{VolumeID: v.id, Size: v.size, AvailabilityZone: v.in.subnet.az, Status: "available",
		CreateTime: ts(v.in.launchTime), VolumeType: v.vtype, Tags: tagsXML(v.tags)}
	if v.attached() {
		x.Status = "in-use"
		x.Attachments = []volumeAttachmentXML{{VolumeID: v.id, InstanceID: v.in.id, Device: v.device, Status: "attached",
			AttachTime: ts(v.in.launchTime), DeleteOnTermination: v.deleteOnTermination}}
	}
	return x
}

// describeVolumes: VolumeId.N (an unknown one is InvalidVolume.NotFound),
// the filters below and tag filters, MaxResults 5-500 with NextToken.
func (r *Region) describeVolumes(c *call) (any, error) {
	ids := c.p.list("VolumeId")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 5, 500)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(ids) > 0 {
		return nil, errInvalidParameterValue("The parameter volumeIdsSet cannot be used with the parameter maxResults")
	}
	var all []*volume
	for _, v := range r.volOrder {
		if r.volumes[v.id] == v && v.exists() && r.visible(v.in.visibleAt) {
			all = append(all, v)
		}
	}
	list, err := selectIDs(ids, all, r.volumeByID)
	if err != nil {
		return nil, err
	}
	var kept []*volume
	for _, v := range list {
		ok, err := filterMatch(fs, v.tags, true, func(name string) (string, bool) {
			switch name {
			case "volume-id":
				return v.id, true
			case "attachment.instance-id":
				if v.attached() {
					return v.in.id, true
				}
				return "", true
			case "attachment.device":
				if v.attached() {
					return v.device, true
				}
				return "", true
			case "attachment.delete-on-termination":
				return strconv.FormatBool(v.deleteOnTermination), true
			case "availability-zone":
				return v.in.subnet.az, true
			case "volume-type":
				return v.vtype, true
			case "status":
				return r.volumeXML(v).Status, true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, v)
		}
	}
	return paginate(c.p, "vol", kept, limit, r.volumeXML, func(items []volumeXML, next string) any {
		return &describeVolumesXML{Volumes: items, NextToken: next}
	})
}

// volumeTags is CreateTags' lookup for vol- ids.
func (r *Region) volumeTags(id string) (map[string]string, error) {
	v, err := r.volumeByID(id)
	if err != nil {
		return nil, err
	}
	return v.tags, nil
}
