package awssim

import (
	"fmt"
	"maps"
	"strconv"
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
		blockDevices: d.blockDevices,
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
