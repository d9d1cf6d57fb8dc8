package awssim

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

func (r *Region) registerEC2() {
	r.ec2["RunInstances"] = r.runInstances
	r.ec2["DescribeInstances"] = r.describeInstances
	r.ec2["TerminateInstances"] = r.terminateInstances
	r.ec2["StopInstances"] = r.stopInstances
	r.ec2["CreateTags"] = r.createTags
	r.ec2["DescribeInstanceTypes"] = r.describeInstanceTypes
	r.ec2["DescribeImages"] = r.describeImages
	r.ec2["DescribeSubnets"] = r.describeSubnets
	r.ec2["DescribeSecurityGroups"] = r.describeSecurityGroups
	r.ec2["DescribeInstanceTypeOfferings"] = r.describeInstanceTypeOfferings
	r.ec2["CreateLaunchTemplate"] = r.createLaunchTemplate
	r.ec2["CreateLaunchTemplateVersion"] = r.createLaunchTemplateVersion
	r.ec2["DescribeLaunchTemplates"] = r.describeLaunchTemplates
	r.ec2["DescribeLaunchTemplateVersions"] = r.describeLaunchTemplateVersions
	r.ec2["DeleteLaunchTemplate"] = r.deleteLaunchTemplate
	r.ec2["DescribeSpotInstanceRequests"] = r.describeSpotInstanceRequests
	r.ec2["DescribeInstanceAttribute"] = r.describeInstanceAttribute // attribute.go
	r.ec2["DescribeVolumes"] = r.describeVolumes                     // volumes.go
	r.tagLookups["vol-"] = r.volumeTags
}

// amiError returns the error AWS gives for an AMI id it cannot use:
// InvalidAMIID.Malformed when the id is not ami- and 8 or 17 hex digits,
// else InvalidAMIID.NotFound.
func amiError(id string) *APIError {
	if !validID(id, "ami-") {
		return &APIError{Code: "InvalidAMIID.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"ami-...\")", id), Status: 400}
	}
	return &APIError{Code: "InvalidAMIID.NotFound", Message: fmt.Sprintf("The image id '[%s]' does not exist", id), Status: 400}
}

// validID reports whether id is prefix followed by 8 or 17 hex digits.
func validID(id, prefix string) bool {
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return false
	}
	h := id[len(prefix):]
	if len(h) != 8 && len(h) != 17 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// instanceIDError returns InvalidInstanceID.Malformed for a malformed id,
// else nil.
func instanceIDMalformed(id string) *APIError {
	if validID(id, "i-") {
		return nil
	}
	return &APIError{Code: "InvalidInstanceID.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\"", id), Status: 400}
}

func instancesNotFound(ids []string) *APIError {
	if len(ids) == 1 {
		return &APIError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance ID '%s' does not exist", ids[0]), Status: 400}
	}
	return &APIError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(ids, ", ")), Status: 400}
}

// instancesByID resolves instance ids as EC2 does: a malformed id is
// InvalidInstanceID.Malformed, unknown (or purged) ones are listed in one
// InvalidInstanceID.NotFound. Duplicates are dropped.
func (r *Region) instancesByID(ids []string) ([]*instance, error) {
	var missing []string
	out := make([]*instance, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := instanceIDMalformed(id); err != nil {
			return nil, err
		}
		in := r.instances[id]
		if in == nil || !r.visible(in.visibleAt) {
			missing = append(missing, id)
			continue
		}
		out = append(out, in)
	}
	if len(missing) > 0 {
		return nil, instancesNotFound(missing)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// RunInstances

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	RequesterID   string        `xml:"requesterId,omitempty"`
	Groups        []groupXML    `xml:"groupSet>item"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

// parseSpecParams reads the launch parameters RunInstances and
// RequestLaunchTemplateData share onto spec (only those present).
func (r *Region) parseSpecParams(p params, spec *launchSpec) error {
	if v := p.str("ImageId"); v != "" {
		spec.imageID = v
	}
	if v := p.str("InstanceType"); v != "" {
		spec.instanceType = v
	}
	if v := p.str("KeyName"); v != "" {
		spec.keyName = v
	}
	if v := p.str("UserData"); v != "" {
		spec.userData = v
	}
	switch v := p.str("InstanceInitiatedShutdownBehavior"); v {
	case "":
	case "stop", "terminate":
		spec.shutdownBehavior = v
	default:
		return errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for InstanceInitiatedShutdownBehavior. Valid values: stop, terminate", v))
	}
	if v := p.str("IamInstanceProfile.Arn"); v != "" {
		spec.iamProfile = v
	} else if v := p.str("IamInstanceProfile.Name"); v != "" {
		spec.iamProfile = v
	}
	groups := p.list("SecurityGroupId")
	for _, name := range p.list("SecurityGroup") {
		var found bool
		for _, g := range r.sgs {
			if g.name == name {
				groups = append(groups, g.id)
				found = true
			}
		}
		if !found {
			return &APIError{Code: "InvalidGroup.NotFound", Message: fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", name, r.vpc.id), Status: 400}
		}
	}
	for _, ni := range p.structs("NetworkInterface") {
		if v := ni.str("SubnetId"); v != "" {
			spec.subnetID = v
		}
		groups = append(groups, ni.list("SecurityGroupId")...)
	}
	if len(groups) > 0 {
		spec.sgIDs = groups
	}
	if v := p.str("SubnetId"); v != "" {
		spec.subnetID = v
	}
	if az := p.str("Placement.AvailabilityZone"); az != "" && spec.subnetID == "" {
		var found bool
		for _, s := range r.subnets {
			if s.az == az {
				spec.subnetID, found = s.id, true
				break
			}
		}
		if !found {
			return errInvalidParameterValue(fmt.Sprintf("Invalid availability zone: [%s]", az))
		}
	}
	if bdms := p.structs("BlockDeviceMapping"); len(bdms) > 0 {
		spec.blockDevices = nil
		for _, b := range bdms {
			spec.blockDevices = append(spec.blockDevices, blockDevice{
				deviceName:          b.reqStr("DeviceName"),
				volumeSize:          b.intOr("Ebs.VolumeSize", 8),
				volumeType:          b.str("Ebs.VolumeType"),
				deleteOnTermination: b.boolOr("Ebs.DeleteOnTermination", true),
			})
		}
	}
	if p.has("InstanceMarketOptions") {
		mt := p.str("InstanceMarketOptions.MarketType")
		switch mt {
		case "spot":
			spec.spot = true
			spec.maxPrice = p.str("InstanceMarketOptions.SpotOptions.MaxPrice")
			spec.spotType = p.str("InstanceMarketOptions.SpotOptions.SpotInstanceType")
			spec.interruptBehavior = p.str("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior")
			if t := spec.spotType; t != "" && t != "one-time" && t != "persistent" {
				return errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for SpotInstanceType", t))
			}
			if b := spec.interruptBehavior; b != "" && b != "terminate" && b != "stop" && b != "hibernate" {
				return errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for InstanceInterruptionBehavior", b))
			}
			stopping := spec.interruptBehavior == "stop" || spec.interruptBehavior == "hibernate"
			// API Reference, SpotMarketOptions: for RunInstances, persistent
			// requests only with interruption behaviour hibernate or stop;
			// User Guide, "Behavior of Spot Instance interruptions": to stop
			// or hibernate, the request type must be persistent.
			if spec.spotType == "persistent" && !stopping {
				return errInvalidParameterCombination("The parameter InstanceInterruptionBehavior must be stop or hibernate for a persistent Spot Instance request.")
			}
			if stopping && spec.spotType != "persistent" {
				return errInvalidParameterCombination("The parameter InstanceInterruptionBehavior can be stop or hibernate only for a persistent Spot Instance request.")
			}
		case "capacity-block":
			return &APIError{Code: "Unsupported", Message: "Capacity Blocks are not supported by the simulated region.", Status: 400}
		default:
			return errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for MarketType", mt))
		}
	}
	for _, ts := range p.structs("TagSpecification") {
		rt := ts.str("ResourceType")
		tags := ts.tags("Tag")
		if err := checkTags(tags); err != nil {
			return err
		}
		switch rt {
		case "instance":
			if spec.tags == nil {
				spec.tags = map[string]string{}
			}
			for k, v := range tags {
				spec.tags[k] = v
			}
		case "volume", "network-interface", "spot-instances-request", "elastic-gpu":
		case "":
			return errMissingParameter("TagSpecification.ResourceType")
		default:
			return errInvalidParameterValue(fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", rt))
		}
	}
	return p.Err()
}

func checkTags(tags map[string]string) error {
	for k, v := range tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errInvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
		if len(k) > 128 || k == "" {
			return errInvalidParameterValue(fmt.Sprintf("Tag key exceeds the maximum length of 128 characters or is empty: '%s'", k))
		}
		if len(v) > 256 {
			return errInvalidParameterValue(fmt.Sprintf("Tag value exceeds the maximum length of 256 characters for key '%s'", k))
		}
	}
	return nil
}

func (r *Region) runInstances(c *call) (any, error) {
	p := c.p
	minCount := p.reqInt("MinCount")
	maxCount := p.reqInt("MaxCount")
	token := p.str("ClientToken")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(token) > 64 {
		return nil, errInvalidParameterValue("Value for parameter ClientToken is invalid: the client token must be at most 64 ASCII characters.")
	}
	fp := p.fingerprint("ClientToken")
	if res, found, err := r.idempotent("RunInstances", token, fp); found || err != nil {
		return res, err
	}
	if minCount < 1 {
		return nil, errInvalidParameterValue(fmt.Sprintf("Value (%d) for parameter minCount is invalid. Expected a value greater than zero.", minCount))
	}
	if maxCount < minCount {
		return nil, errInvalidParameterValue(fmt.Sprintf("Value (%d) for parameter maxCount is invalid. Expected a value greater than or equal to minCount (%d).", maxCount, minCount))
	}
	var spec launchSpec
	if p.has("LaunchTemplate") {
		lt, v, err := r.resolveLaunchTemplate(p.str("LaunchTemplate.LaunchTemplateId"), p.str("LaunchTemplate.LaunchTemplateName"), p.str("LaunchTemplate.Version"))
		if err != nil {
			return nil, err
		}
		spec = v.data.spec()
		spec.launchTplID, spec.launchTplVer = lt.id, strconv.FormatInt(v.number, 10)
	}
	if err := r.parseSpecParams(p, &spec); err != nil {
		return nil, err
	}
	if spec.imageID == "" {
		return nil, errMissingParameter("ImageId")
	}
	if spec.instanceType == "" {
		spec.instanceType = "m1.small" // AWS's default, not offered here
	}
	spec.clientToken = token
	if p.str("DryRun") == "true" {
		// The caller is allowed (pickFault refused Denied actions) and the
		// parameters check out: EC2 stops here (doc.go, "Dry runs").
		if _, _, _, _, err := r.checkLaunch(spec); err != nil {
			return nil, err
		}
		return nil, errDryRun()
	}
	if err := r.takeInstanceTokens(maxCount); err != nil {
		return nil, err
	}
	ins, err := r.launch(spec, minCount, maxCount)
	if err != nil {
		return nil, err
	}
	res := r.reservationXML(ins)
	r.remember("RunInstances", token, fp, res)
	return res, nil
}

func (r *Region) reservationXML(ins []*instance) *reservationXML {
	res := &reservationXML{ReservationID: ins[0].reservationID, OwnerID: AccountID}
	for _, g := range ins[0].sgIDs {
		if sg := r.sgByID(g); sg != nil {
			res.Groups = append(res.Groups, groupXML{GroupID: g, GroupName: sg.name})
		}
	}
	for _, in := range ins {
		res.Instances = append(res.Instances, r.instanceXML(in))
	}
	if ins[0].spot || ins[0].owner != "" {
		res.RequesterID = "226008221399"
	}
	return res
}

// ---------------------------------------------------------------------------
// DescribeInstances

type describeInstancesXML struct {
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

// match reports whether s matches an EC2 filter value, which may use the
// wildcards * (any run) and ? (one character).
func match(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	// iterative glob with backtracking on the last *
	var pi, si, star, mark = 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			pi++
			si++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

func matchAny(values []string, s string) bool {
	for _, v := range values {
		if match(v, s) {
			return true
		}
	}
	return false
}

// tagFilter returns a predicate for the tag:KEY, tag-key and tag-value
// filters, or nil if name is none of them.
func tagFilter(f filter) func(map[string]string) bool {
	switch {
	case strings.HasPrefix(f.name, "tag:"):
		key := f.name[4:]
		return func(tags map[string]string) bool {
			v, ok := tags[key]
			return ok && matchAny(f.values, v)
		}
	case f.name == "tag-key":
		return func(tags map[string]string) bool {
			for _, v := range f.values {
				if !strings.ContainsAny(v, "*?") {
					if _, ok := tags[v]; ok {
						return true
					}
					continue
				}
				for k := range tags {
					if match(v, k) {
						return true
					}
				}
			}
			return false
		}
	case f.name == "tag-value":
		return func(tags map[string]string) bool {
			for _, v := range tags {
				if matchAny(f.values, v) {
					return true
				}
			}
			return false
		}
	}
	return nil
}

func invalidFilter(name string) *APIError {
	return errInvalidParameterValue(fmt.Sprintf("The filter '%s' is invalid", name))
}

// filterMatch reports whether one item passes every filter of a describe
// call. With tags, the tag filters (tag:key, tag-key, tag-value) test the
// item's tags; every other filter tests value(name), the item's value for
// a filter, which is false for a name the action does not know: an
// invalid filter, the error.
func filterMatch(fs []filter, tags map[string]string, tagged bool, value func(name string) (string, bool)) (bool, error) {
	ok := true
	for _, f := range fs {
		if tagged {
			if tf := tagFilter(f); tf != nil {
				ok = ok && tf(tags)
				continue
			}
		}
		v, known := value(f.name)
		if !known {
			return false, invalidFilter(f.name)
		}
		ok = ok && matchAny(f.values, v)
	}
	return ok, nil
}

// selectIDs returns all when ids is empty, else get of each id in order;
// get's error (an unknown id) ends the selection.
func selectIDs[T any](ids []string, all []T, get func(id string) (T, error)) ([]T, error) {
	if len(ids) == 0 {
		return all, nil
	}
	var out []T
	for _, id := range ids {
		x, err := get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func (r *Region) instanceFilter(fs []filter) (func(*instance) bool, error) {
	var preds []func(*instance) bool
	for _, f := range fs {
		f := f
		if tf := tagFilter(f); tf != nil {
			preds = append(preds, func(in *instance) bool { return tf(in.ftags) })
			continue
		}
		var field func(*instance) string
		switch f.name {
		case "instance-id":
			set := map[string]bool{}
			wild := false
			for _, v := range f.values {
				set[v] = true
				wild = wild || strings.ContainsAny(v, "*?")
			}
			if !wild {
				preds = append(preds, func(in *instance) bool { return set[in.id] })
				continue
			}
			field = func(in *instance) string { return in.id }
		case "instance-state-name":
			field = func(in *instance) string { return in.state }
		case "instance-state-code":
			field = func(in *instance) string { return strconv.Itoa(stateCodes[in.state]) }
		case "reservation-id":
			field = func(in *instance) string { return in.reservationID }
		case "subnet-id":
			field = func(in *instance) string { return in.subnet.id }
		case "availability-zone":
			field = func(in *instance) string { return in.subnet.az }
		case "instance-type":
			field = func(in *instance) string { return in.typ.name }
		case "image-id":
			field = func(in *instance) string { return in.imageID }
		case "vpc-id":
			field = func(in *instance) string { return r.vpc.id }
		case "private-ip-address":
			field = func(in *instance) string { return in.privateIP.String() }
		case "private-dns-name":
			field = func(in *instance) string { return in.privateDNS }
		case "instance-lifecycle":
			field = func(in *instance) string {
				if in.spot {
					return "spot"
				}
				return ""
			}
		case "spot-instance-request-id":
			field = func(in *instance) string { return in.spotRequestID }
		case "client-token":
			field = func(in *instance) string { return in.clientToken }
		case "key-name":
			field = func(in *instance) string { return in.keyName }
		case "architecture":
			field = func(in *instance) string { return in.typ.arch }
		case "state-reason-code":
			field = func(in *instance) string { return in.reason.code }
		default:
			return nil, invalidFilter(f.name)
		}
		preds = append(preds, func(in *instance) bool { return matchAny(f.values, field(in)) })
	}
	return func(in *instance) bool {
		for _, p := range preds {
			if !p(in) {
				return false
			}
		}
		return true
	}, nil
}

func encodeToken(kind string, n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(n, 10)))
}

func decodeToken(kind, tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		s := string(b)
		if rest, ok := strings.CutPrefix(s, kind+":"); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n >= 0 {
				return n, nil
			}
		}
	}
	return 0, &APIError{Code: "InvalidPaginationToken", Message: fmt.Sprintf("The pagination token '%s' is invalid.", tok), Status: 400}
}

// maxResults reads MaxResults within [lo, hi]; 0 when absent.
func maxResults(p params, lo, hi int) (int, error) {
	if !p.has("MaxResults") {
		return 0, nil
	}
	n := p.intOr("MaxResults", 0)
	if err := p.Err(); err != nil {
		return 0, err
	}
	if n < lo {
		return 0, errInvalidParameterValue(fmt.Sprintf("Value ( %d ) for parameter maxResults is invalid. Expecting a value greater than %d.", n, lo-1))
	}
	if n > hi {
		return 0, errInvalidParameterValue(fmt.Sprintf("Value ( %d ) for parameter maxResults is invalid. Expecting a value less than or equal to %d.", n, hi))
	}
	return n, nil
}

func (r *Region) describeInstances(c *call) (any, error) {
	p := c.p
	ids := p.list("InstanceId")
	fs := p.filters()
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(ids) > 0 && p.has("MaxResults") {
		return nil, errInvalidParameterCombination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	keep, err := r.instanceFilter(fs)
	if err != nil {
		return nil, err
	}
	out := &describeInstancesXML{}
	add := func(in *instance) {
		n := len(out.Reservations)
		if n == 0 || out.Reservations[n-1].ReservationID != in.reservationID {
			out.Reservations = append(out.Reservations, reservationXML{ReservationID: in.reservationID, OwnerID: AccountID})
			n++
			if in.spot || in.owner != "" {
				out.Reservations[n-1].RequesterID = "226008221399"
			}
		}
		out.Reservations[n-1].Instances = append(out.Reservations[n-1].Instances, r.instanceXML(in))
	}
	if len(ids) > 0 {
		ins, err := r.instancesByID(ids)
		if err != nil {
			return nil, err
		}
		sort.Slice(ins, func(i, j int) bool { return ins[i].seq < ins[j].seq })
		for _, in := range ins {
			if keep(in) {
				add(in)
			}
		}
		return out, nil
	}
	start := 0
	if tok := p.str("NextToken"); tok != "" {
		after, err := decodeToken("i", tok)
		if err != nil {
			return nil, err
		}
		start = sort.Search(len(r.order), func(i int) bool { return r.order[i].seq > after })
	}
	count := 0
	for i := start; i < len(r.order); i++ {
		in := r.order[i]
		if in.purged || !r.visible(in.visibleAt) || !keep(in) {
			continue
		}
		add(in)
		count++
		if limit > 0 && count == limit {
			if i+1 < len(r.order) {
				out.NextToken = encodeToken("i", in.seq)
			}
			break
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// TerminateInstances, StopInstances, CreateTags

type stateChangeXML struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  stateXML `xml:"currentState"`
	PreviousState stateXML `xml:"previousState"`
}

type stateChangesXML struct {
	Instances []stateChangeXML `xml:"instancesSet>item"`
}

func (r *Region) terminateInstances(c *call) (any, error) {
	ids := c.p.list("InstanceId")
	if len(ids) == 0 {
		return nil, errMissingParameter("InstanceId")
	}
	if len(ids) > 1000 {
		return nil, errInvalidParameterValue("The maximum number of instance IDs per request is 1000.")
	}
	ins, err := r.instancesByID(ids)
	if err != nil {
		return nil, err
	}
	out := &stateChangesXML{}
	for _, in := range ins {
		prev := r.terminate(in, reasonUserTerminate)
		out.Instances = append(out.Instances, stateChangeXML{InstanceID: in.id, CurrentState: stateOf(in.state), PreviousState: stateOf(prev)})
	}
	return out, nil
}

func (r *Region) stopInstances(c *call) (any, error) {
	ids := c.p.list("InstanceId")
	if len(ids) == 0 {
		return nil, errMissingParameter("InstanceId")
	}
	ins, err := r.instancesByID(ids)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if sr := r.spotReqs[in.spotRequestID]; in.spot && (sr == nil || sr.reqType != "persistent") {
			return nil, &APIError{Code: "UnsupportedOperation", Message: fmt.Sprintf("You can't stop the Spot Instance '%s' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.", in.id), Status: 400}
		}
		if in.state == stateTerminated || in.state == stateShuttingDown {
			return nil, &APIError{Code: "IncorrectInstanceState", Message: fmt.Sprintf("This instance '%s' is not in a state from which it can be stopped.", in.id), Status: 400}
		}
	}
	out := &stateChangesXML{}
	for _, in := range ins {
		prev := r.stop(in, reasonUserStop)
		out.Instances = append(out.Instances, stateChangeXML{InstanceID: in.id, CurrentState: stateOf(in.state), PreviousState: stateOf(prev)})
	}
	return out, nil
}

type returnXML struct {
	Return bool `xml:"return"`
}

func (r *Region) createTags(c *call) (any, error) {
	ids := c.p.list("ResourceId")
	tags := c.p.tags("Tag")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errMissingParameter("ResourceId")
	}
	if len(tags) == 0 {
		return nil, errMissingParameter("Tag")
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	var apply []func()
	for _, id := range ids {
		m, err := r.taggable(id)
		if err != nil {
			return nil, err
		}
		if in := r.instances[id]; in != nil && strings.HasPrefix(id, "i-") {
			apply = append(apply, func() { r.addInstanceTags(in, tags) })
			continue
		}
		apply = append(apply, func() {
			for k, v := range tags {
				m[k] = v
			}
		})
	}
	for _, f := range apply {
		f()
	}
	return &returnXML{Return: true}, nil
}

// taggable returns the tag map of a resource id for CreateTags. Resources
// of other files register a lookup in r.tagLookups keyed by id prefix
// (e.g. "fleet-", "sfr-").
func (r *Region) taggable(id string) (map[string]string, error) {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "i":
		if err := instanceIDMalformed(id); err != nil {
			return nil, err
		}
		in := r.instances[id]
		if in == nil || !r.visible(in.visibleAt) {
			return nil, instancesNotFound([]string{id})
		}
		return in.tags, nil
	case "sir":
		sr := r.spotReqs[id]
		if sr == nil || !r.visible(sr.visibleAt) {
			return nil, &APIError{Code: "InvalidSpotInstanceRequestID.NotFound", Message: fmt.Sprintf("The spot instance request ID '%s' does not exist", id), Status: 400}
		}
		if sr.tags == nil {
			sr.tags = map[string]string{}
		}
		return sr.tags, nil
	case "lt":
		lt := r.lts[id]
		if lt == nil {
			return nil, &APIError{Code: "InvalidLaunchTemplateId.NotFound", Message: fmt.Sprintf("The specified launch template, with template ID %s, does not exist.", id), Status: 400}
		}
		return lt.tags, nil
	case "subnet":
		s := r.subnetBy[id]
		if s == nil {
			return nil, &APIError{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", id), Status: 400}
		}
		return s.tags, nil
	}
	if f := r.tagLookups[prefix+"-"]; f != nil {
		return f(id)
	}
	return nil, &APIError{Code: "InvalidID", Message: fmt.Sprintf("The ID '%s' is not valid", id), Status: 400}
}
