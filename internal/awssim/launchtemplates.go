package awssim

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// launchTemplate is an EC2 launch template with its versions.
type launchTemplate struct {
	id, name   string
	created    time.Time
	defaultVer int64
	latestVer  int64
	versions   map[int64]*ltVersion
	tags       map[string]string
}

type ltVersion struct {
	number      int64
	description string
	created     time.Time
	data        ltData
}

// ltData is the part of LaunchTemplateData the simulation uses.
type ltData struct {
	imageID, instanceType, keyName string
	iamProfileArn, iamProfileName  string
	userData                       string
	sgIDs                          []string
	subnetID                       string // NetworkInterface.1.SubnetId
	spot                           bool
	maxPrice                       string
	tags                           map[string]string // TagSpecification for instances
	blockDevices                   []blockDevice
	shutdownBehavior               string
}

// spec returns the launchSpec the version describes; callers override
// fields with their own parameters.
func (d ltData) spec() launchSpec {
	s := launchSpec{
		instanceType: d.instanceType,
		imageID:      d.imageID,
		keyName:      d.keyName,
		sgIDs:        append([]string(nil), d.sgIDs...),
		subnetID:     d.subnetID,
		userData:     d.userData,
		spot:         d.spot,
		maxPrice:     d.maxPrice,
		tags:         maps.Clone(d.tags),
		blockDevices: append([]blockDevice(nil), d.blockDevices...),

		shutdownBehavior: d.shutdownBehavior,
	}
	s.iamProfile = d.iamProfileArn
	if s.iamProfile == "" {
		s.iamProfile = d.iamProfileName
	}
	if s.tags == nil {
		s.tags = map[string]string{}
	}
	return s
}

// ltDataOf is the inverse of spec.
func ltDataOf(s launchSpec) ltData {
	d := ltData{imageID: s.imageID, instanceType: s.instanceType, keyName: s.keyName, userData: s.userData,
		sgIDs: s.sgIDs, subnetID: s.subnetID, spot: s.spot, maxPrice: s.maxPrice, tags: s.tags, blockDevices: s.blockDevices,
		shutdownBehavior: s.shutdownBehavior}
	if strings.HasPrefix(s.iamProfile, "arn:") {
		d.iamProfileArn = s.iamProfile
	} else {
		d.iamProfileName = s.iamProfile
	}
	return d
}

// resolveLaunchTemplate finds a launch template by id or name and one of
// its versions: "" or "$Default" the default, "$Latest" the latest, else a
// number. Errors are AWS's: InvalidLaunchTemplateId.NotFound,
// InvalidLaunchTemplateName.NotFoundException,
// InvalidLaunchTemplateId.VersionNotFound, InvalidLaunchTemplateId.Malformed.
// Call with the lock held.
func (r *Region) resolveLaunchTemplate(id, name, version string) (*launchTemplate, *ltVersion, error) {
	var lt *launchTemplate
	switch {
	case id != "" && name != "":
		return nil, nil, errInvalidParameterCombination("Cannot specify both LaunchTemplateId and LaunchTemplateName.")
	case id != "":
		if !validID(id, "lt-") {
			return nil, nil, &APIError{Code: "InvalidLaunchTemplateId.Malformed", Message: fmt.Sprintf("The specified launch template ID '%s' is malformed.", id), Status: 400}
		}
		if lt = r.lts[id]; lt == nil {
			return nil, nil, &APIError{Code: "InvalidLaunchTemplateId.NotFound", Message: fmt.Sprintf("The specified launch template, with template ID %s, does not exist.", id), Status: 400}
		}
	case name != "":
		if lt = r.ltByName[name]; lt == nil {
			return nil, nil, &APIError{Code: "InvalidLaunchTemplateName.NotFoundException", Message: fmt.Sprintf("The specified launch template, with template name %s, does not exist.", name), Status: 400}
		}
	default:
		return nil, nil, errMissingParameter("LaunchTemplateId or LaunchTemplateName")
	}
	v, err := lt.version(version)
	if err != nil {
		return nil, nil, err
	}
	return lt, v, nil
}

func (lt *launchTemplate) version(version string) (*ltVersion, error) {
	var n int64
	switch version {
	case "", "$Default":
		n = lt.defaultVer
	case "$Latest":
		n = lt.latestVer
	default:
		var err error
		if n, err = strconv.ParseInt(version, 10, 64); err != nil || n < 1 {
			return nil, &APIError{Code: "InvalidLaunchTemplateId.VersionNotFound", Message: fmt.Sprintf("Could not find launch template version %s for launch template %s.", version, lt.id), Status: 400}
		}
	}
	v := lt.versions[n]
	if v == nil {
		return nil, &APIError{Code: "InvalidLaunchTemplateId.VersionNotFound", Message: fmt.Sprintf("Could not find launch template version %s for launch template %s.", version, lt.id), Status: 400}
	}
	return v, nil
}

// ---------------------------------------------------------------------------
// actions

type ltXML struct {
	ID             string   `xml:"launchTemplateId"`
	Name           string   `xml:"launchTemplateName"`
	CreateTime     string   `xml:"createTime"`
	CreatedBy      string   `xml:"createdBy"`
	DefaultVersion int64    `xml:"defaultVersionNumber"`
	LatestVersion  int64    `xml:"latestVersionNumber"`
	Tags           []tagXML `xml:"tagSet>item"`
}

type ltIamXML struct {
	Arn  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

type ltSpotOptionsXML struct {
	MaxPrice         string `xml:"maxPrice,omitempty"`
	SpotInstanceType string `xml:"spotInstanceType"`
}

type ltMarketXML struct {
	MarketType  string           `xml:"marketType"`
	SpotOptions ltSpotOptionsXML `xml:"spotOptions"`
}

type ltTagSpecXML struct {
	ResourceType string   `xml:"resourceType"`
	Tags         []tagXML `xml:"tagSet>item"`
}

type ltNetIfXML struct {
	DeviceIndex int      `xml:"deviceIndex"`
	SubnetID    string   `xml:"subnetId"`
	Groups      []string `xml:"groupSet>item"`
}

type ltEbsXML struct {
	VolumeSize          int    `xml:"volumeSize"`
	VolumeType          string `xml:"volumeType,omitempty"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type ltBDMXML struct {
	DeviceName string   `xml:"deviceName"`
	Ebs        ltEbsXML `xml:"ebs"`
}

type ltDataXML struct {
	ImageID          string         `xml:"imageId,omitempty"`
	InstanceType     string         `xml:"instanceType,omitempty"`
	KeyName          string         `xml:"keyName,omitempty"`
	UserData         string         `xml:"userData,omitempty"`
	IamProfile       *ltIamXML      `xml:"iamInstanceProfile,omitempty"`
	SecurityGroupIDs []string       `xml:"securityGroupIdSet>item"`
	NetworkIfs       []ltNetIfXML   `xml:"networkInterfaceSet>item"`
	BlockDevices     []ltBDMXML     `xml:"blockDeviceMappingSet>item"`
	Market           *ltMarketXML   `xml:"instanceMarketOptions,omitempty"`
	TagSpecs         []ltTagSpecXML `xml:"tagSpecificationSet>item"`
}

type ltVersionXML struct {
	ID             string    `xml:"launchTemplateId"`
	Name           string    `xml:"launchTemplateName"`
	VersionNumber  int64     `xml:"versionNumber"`
	Description    string    `xml:"versionDescription,omitempty"`
	CreateTime     string    `xml:"createTime"`
	CreatedBy      string    `xml:"createdBy"`
	DefaultVersion bool      `xml:"defaultVersion"`
	Data           ltDataXML `xml:"launchTemplateData"`
}

func (lt *launchTemplate) xml() ltXML {
	return ltXML{ID: lt.id, Name: lt.name, CreateTime: ts(lt.created), CreatedBy: "arn:aws:iam::" + AccountID + ":root",
		DefaultVersion: lt.defaultVer, LatestVersion: lt.latestVer, Tags: tagsXML(lt.tags)}
}

func (lt *launchTemplate) versionXML(v *ltVersion) ltVersionXML {
	s := v.data.spec()
	d := ltDataXML{ImageID: s.imageID, InstanceType: s.instanceType, KeyName: s.keyName, UserData: s.userData}
	if s.iamProfile != "" {
		if strings.HasPrefix(s.iamProfile, "arn:") {
			d.IamProfile = &ltIamXML{Arn: s.iamProfile}
		} else {
			d.IamProfile = &ltIamXML{Name: s.iamProfile}
		}
	}
	if s.subnetID != "" {
		d.NetworkIfs = []ltNetIfXML{{DeviceIndex: 0, SubnetID: s.subnetID, Groups: s.sgIDs}}
	} else {
		d.SecurityGroupIDs = s.sgIDs
	}
	for _, b := range s.blockDevices {
		d.BlockDevices = append(d.BlockDevices, ltBDMXML{DeviceName: b.deviceName, Ebs: ltEbsXML{VolumeSize: b.volumeSize, VolumeType: b.volumeType, DeleteOnTermination: b.deleteOnTermination}})
	}
	if s.spot {
		d.Market = &ltMarketXML{MarketType: "spot", SpotOptions: ltSpotOptionsXML{MaxPrice: s.maxPrice, SpotInstanceType: "one-time"}}
	}
	if len(s.tags) > 0 {
		d.TagSpecs = []ltTagSpecXML{{ResourceType: "instance", Tags: tagsXML(s.tags)}}
	}
	return ltVersionXML{ID: lt.id, Name: lt.name, VersionNumber: v.number, Description: v.description, CreateTime: ts(v.created),
		CreatedBy: "arn:aws:iam::" + AccountID + ":root", DefaultVersion: v.number == lt.defaultVer, Data: d}
}

var ltNameRE = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

// parseLTData reads LaunchTemplateData over base.
func (r *Region) parseLTData(p params, base launchSpec) (ltData, error) {
	spec := base
	if err := r.parseSpecParams(p.sub("LaunchTemplateData"), &spec); err != nil {
		return ltData{}, err
	}
	return ltDataOf(spec), nil
}

type createLTXML struct {
	LaunchTemplate ltXML `xml:"launchTemplate"`
}

func (r *Region) createLaunchTemplate(c *call) (any, error) {
	p := c.p
	name := p.reqStr("LaunchTemplateName")
	token := p.str("ClientToken")
	if err := c.err(); err != nil {
		return nil, err
	}
	fp := p.fingerprint("ClientToken")
	if res, found, err := r.idempotent("CreateLaunchTemplate", token, fp); found || err != nil {
		return res, err
	}
	if !ltNameRE.MatchString(name) {
		return nil, errInvalidParameterValue(fmt.Sprintf("Launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.' (%s)", name))
	}
	if r.ltByName[name] != nil {
		return nil, &APIError{Code: "InvalidLaunchTemplateName.AlreadyExistsException", Message: fmt.Sprintf("Launch template name already in use."), Status: 400}
	}
	if !p.has("LaunchTemplateData") {
		return nil, errMissingParameter("LaunchTemplateData")
	}
	data, err := r.parseLTData(p, launchSpec{})
	if err != nil {
		return nil, err
	}
	lt := &launchTemplate{id: r.newID("lt-"), name: name, created: r.now, defaultVer: 1, latestVer: 1,
		versions: map[int64]*ltVersion{}, tags: map[string]string{}}
	lt.versions[1] = &ltVersion{number: 1, description: p.str("VersionDescription"), created: r.now, data: data}
	for _, ts := range p.structs("TagSpecification") {
		if ts.str("ResourceType") == "launch-template" {
			for k, v := range ts.tags("Tag") {
				lt.tags[k] = v
			}
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	r.lts[lt.id] = lt
	r.ltByName[lt.name] = lt
	r.ltOrder = append(r.ltOrder, lt)
	res := &createLTXML{LaunchTemplate: lt.xml()}
	r.remember("CreateLaunchTemplate", token, fp, res)
	return res, nil
}

type createLTVersionXML struct {
	Version ltVersionXML `xml:"launchTemplateVersion"`
}

func (r *Region) createLaunchTemplateVersion(c *call) (any, error) {
	p := c.p
	token := p.str("ClientToken")
	fp := p.fingerprint("ClientToken")
	if res, found, err := r.idempotent("CreateLaunchTemplateVersion", token, fp); found || err != nil {
		return res, err
	}
	lt, _, err := r.resolveLaunchTemplate(p.str("LaunchTemplateId"), p.str("LaunchTemplateName"), "$Latest")
	if err != nil {
		return nil, err
	}
	if !p.has("LaunchTemplateData") {
		return nil, errMissingParameter("LaunchTemplateData")
	}
	var base launchSpec
	if sv := p.str("SourceVersion"); sv != "" {
		src, err := lt.version(sv)
		if err != nil {
			return nil, err
		}
		base = src.data.spec()
	}
	data, err := r.parseLTData(p, base)
	if err != nil {
		return nil, err
	}
	lt.latestVer++
	v := &ltVersion{number: lt.latestVer, description: p.str("VersionDescription"), created: r.now, data: data}
	lt.versions[v.number] = v
	res := &createLTVersionXML{Version: lt.versionXML(v)}
	r.remember("CreateLaunchTemplateVersion", token, fp, res)
	return res, nil
}

type describeLTsXML struct {
	Templates []ltXML `xml:"launchTemplates>item"`
	NextToken string  `xml:"nextToken,omitempty"`
}

func (r *Region) describeLaunchTemplates(c *call) (any, error) {
	ids := c.p.list("LaunchTemplateId")
	names := c.p.list("LaunchTemplateName")
	fs := c.p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(c.p, 1, 200)
	if err != nil {
		return nil, err
	}
	var list []*launchTemplate
	for _, id := range ids {
		lt, _, err := r.resolveLaunchTemplate(id, "", "")
		if err != nil {
			return nil, err
		}
		list = append(list, lt)
	}
	for _, n := range names {
		lt := r.ltByName[n]
		if lt == nil {
			return nil, &APIError{Code: "InvalidLaunchTemplateName.NotFoundException", Message: "At least one of the launch templates specified in the request does not exist.", Status: 400}
		}
		list = append(list, lt)
	}
	if len(ids) == 0 && len(names) == 0 {
		list = r.ltOrder
	}
	var kept []*launchTemplate
	for _, lt := range list {
		ok, err := filterMatch(fs, lt.tags, true, func(name string) (string, bool) {
			switch name {
			case "launch-template-name":
				return lt.name, true
			case "create-time":
				return ts(lt.created), true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, lt)
		}
	}
	return paginate(c.p, "lt", kept, limit, (*launchTemplate).xml, func(items []ltXML, next string) any {
		return &describeLTsXML{Templates: items, NextToken: next}
	})
}

type describeLTVersionsXML struct {
	Versions  []ltVersionXML `xml:"launchTemplateVersionSet>item"`
	NextToken string         `xml:"nextToken,omitempty"`
}

func (r *Region) describeLaunchTemplateVersions(c *call) (any, error) {
	p := c.p
	versions := p.list("LaunchTemplateVersion")
	resolve := p.boolOr("ResolveAlias", false)
	minV, maxV := int64(p.intOr("MinVersion", 0)), int64(p.intOr("MaxVersion", 0))
	if err := c.err(); err != nil {
		return nil, err
	}
	limit, err := maxResults(p, 1, 200)
	if err != nil {
		return nil, err
	}
	type pair struct {
		lt *launchTemplate
		v  *ltVersion
	}
	var list []pair
	if p.str("LaunchTemplateId") == "" && p.str("LaunchTemplateName") == "" {
		// only $Latest / $Default may be asked across all templates
		if len(versions) == 0 {
			return nil, errMissingParameter("LaunchTemplateId or LaunchTemplateName")
		}
		for _, lt := range r.ltOrder {
			for _, vs := range versions {
				if vs != "$Latest" && vs != "$Default" {
					return nil, errInvalidParameterValue("Only $Latest and $Default may be specified without a launch template id or name.")
				}
				v, _ := lt.version(vs)
				list = append(list, pair{lt, v})
			}
		}
	} else {
		lt, _, err := r.resolveLaunchTemplate(p.str("LaunchTemplateId"), p.str("LaunchTemplateName"), "")
		if err != nil {
			return nil, err
		}
		if len(versions) > 0 {
			for _, vs := range versions {
				v, err := lt.version(vs)
				if err != nil {
					return nil, err
				}
				list = append(list, pair{lt, v})
			}
		} else {
			for n := int64(1); n <= lt.latestVer; n++ {
				v := lt.versions[n]
				if v == nil || minV > 0 && n < minV || maxV > 0 && n > maxV {
					continue
				}
				list = append(list, pair{lt, v})
			}
		}
	}
	return paginate(p, "ltv", list, limit, func(x pair) ltVersionXML {
		v := x.lt.versionXML(x.v)
		if resolve {
			// ResolveAlias: "If true, and if a Systems Manager parameter
			// is specified for ImageId, the AMI ID is displayed in the
			// response for imageId" (API Reference).
			if id, err := r.resolveAlias(v.Data.ImageID); err == nil {
				v.Data.ImageID = id
			}
		}
		return v
	},
		func(items []ltVersionXML, next string) any {
			return &describeLTVersionsXML{Versions: items, NextToken: next}
		})
}

func (r *Region) deleteLaunchTemplate(c *call) (any, error) {
	lt, _, err := r.resolveLaunchTemplate(c.p.str("LaunchTemplateId"), c.p.str("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	delete(r.lts, lt.id)
	delete(r.ltByName, lt.name)
	for i, x := range r.ltOrder {
		if x == lt {
			r.ltOrder = append(r.ltOrder[:i:i], r.ltOrder[i+1:]...)
			break
		}
	}
	return &createLTXML{LaunchTemplate: lt.xml()}, nil
}
