// Package awssim is a simulated AWS region that the real aws-sdk-go-v2
// clients (and the AWS CLI, boto3, Terraform) talk to over HTTP exactly as
// they talk to AWS: EC2 and Auto Scaling in the AWS Query protocols
// (form-encoded requests, XML answers, XML errors), SSM in JSON 1.1.
//
// # Using it
//
//	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
//	r := awssim.New(awssim.Options{Clock: clk})
//	endpoint, stop := r.Start() // http://127.0.0.1:PORT
//	defer stop()
//	cfg := awssim.ClientConfig(endpoint, "us-east-1")
//	ec2c := ec2.NewFromConfig(cfg)
//	clk.Advance(2 * time.Second) // pending -> running at the next request or r.Tick()
//
// ListenAndServe runs a standalone region (ohfpd simulate --listen ADDR).
// Levers (faults, throttling, Spot interruptions, console actions,
// capacity) are Go methods on *Region and JSON endpoints under /_sim/ (see
// controlHandler in levers.go). Calls and Errors count requests per action.
//
// # Time
//
// The state advances lazily: every request, lever and inspection helper
// first calls r.advance(clock.Now()) under the lock, which runs the due
// events (in time order, each with its own due time), then every ticker.
// Tick does the same for tests; Run(ctx, interval) does it on a wall-clock
// ticker (ListenAndServe starts it). Instances are pending for
// Options.LaunchDelay, shutting-down (or stopping) for TerminateDelay, and
// terminated ones stay visible for TerminatedRetention.
//
// # AWS behaviour modelled, and where it comes from
//
// Each behaviour below follows the AWS page named with it; where awssim is
// still more lenient than AWS, it says so.
//
// Filter values (params.go, filterLimit). Every EC2 call whose filters
// together hold more than MaxFilterValues (200) values is refused, before
// its action reads any parameter, with HTTP 400 FilterLimitExceeded, "The maximum number
// of filter values specified on a single call is 200". The error code is
// listed in the EC2 API Reference, "Error codes for the Amazon EC2 API"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html);
// the figure 200 and the message are what EC2 answers (HF-CONTRACT.md,
// "AWS facts"): no AWS page found states the number. Ids passed as
// parameters (InstanceId.N, SpotInstanceRequestId.N, FleetId.N) are not
// filter values and are not counted: no AWS page says they are. Filters
// holding no value and Auto Scaling's Filters.member.N are not limited.
// DescribeInstances rejects InstanceId.N together with MaxResults
// (API Reference, DescribeInstances: "You cannot specify this parameter and
// the instance IDs parameter in the same request") and answers
// InvalidInstanceID.NotFound for an unknown id ("If you specify an instance
// ID that is not valid, an error is returned"), which is why callers that
// must not fail on a purged id describe through the instance-id filter.
//
// Spot interruptions (spot.go, interruptSpot; the InterruptSpot lever).
// EC2 User Guide, "Spot request status"
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-request-status.html
// and its "State changes for a Spot request" tables), "Spot Instance
// interruption notices" (spot-instance-termination-notices.html) and
// "Behavior of Spot Instance interruptions" (interruption-behavior.html):
//   - terminate (the default): the request's status becomes
//     instance-terminated-no-capacity at once, never marked-for-termination
//     (the note on instance-terminated-no-capacity), with that update time;
//     the request is closed (one-time); the instance stays running for the
//     two minutes of the notice, then shutting-down and terminated with
//     Server.SpotInstanceTermination; the status code and its time do not
//     change when it does.
//   - stop: marked-for-stop at once (request active, instance running);
//     two minutes later the instance stops with Server.SpotInstanceShutdown
//     and the request becomes disabled with instance-stopped-no-capacity.
//   - hibernate: as stop, but hibernation "begins immediately": no
//     two-minute warning. AWS documents no hibernation-specific status
//     code (there is no marked-for-hibernation in its tables), so awssim
//     uses the stop codes.
//   - RunInstances takes SpotInstanceType persistent only with behaviour
//     stop or hibernate (API Reference, SpotMarketOptions) and stop or
//     hibernate only with persistent (interruption-behavior.html); EC2
//     Fleet and Spot Fleet take stop or hibernate only for type maintain.
//   - a user stopping a persistent Spot Instance: marked-for-stop while it
//     stops, then instance-stopped-by-user, request disabled.
//
// Still lenient or missing: awssim's fleets refuse stop and hibernate
// (Unsupported) rather than model them; an interrupted persistent request
// is never fulfilled again (EC2 restarts the stopped instance when
// capacity returns); persistent terminate-behaviour requests, price
// interruptions (instance-*-by-price), launch groups and the instance
// metadata / EventBridge notices are not modelled; the status messages
// are paraphrased from the codes' descriptions, not EC2's exact strings.
//
// # Extension points (for fleet.go, spotfleet.go, asg.go)
//
// Everything below is package-internal and must be used with r.mu held;
// handlers are always called with it held.
//
// Registering actions. New calls r.registerExtensions() (extensions.go)
// after the core actions are in place. Add one line there per file, e.g.
//
//	func (r *Region) registerExtensions() {
//		r.registerFleetActions()     // fleet.go
//		r.registerSpotFleetActions() // spotfleet.go
//		r.registerASGActions()       // asg.go
//	}
//
// and in your file fill the dispatch tables, which map an action name to a
// handler func(*call) (any, error):
//
//	func (r *Region) registerFleetActions() {
//		r.ec2["CreateFleet"] = r.createFleet
//		r.autoscaling["CreateAutoScalingGroup"] = r.createASG // in asg.go
//	}
//
// Mutating EC2 actions draw from the "mutating" throttle bucket and
// Describe*/Get* from the "non-mutating" one automatically; override with
// r.actionClass["X"] = bucketNonMutating if needed. Auto Scaling actions draw
// from the Auto Scaling buckets.
//
// Reading parameters. c.p is a params view of the form. ec2query lists are
// flattened with a 1-based index (InstanceId.1, Filter.1.Name,
// Filter.1.Value.1, TagSpecification.1.Tag.1.Key,
// LaunchTemplateConfigs.1.Overrides.1.InstanceType); awsquery lists add
// ".member" (InstanceIds.member.1, Tags.member.1.Key,
// MixedInstancesPolicy.LaunchTemplate.Overrides.member.1.InstanceType).
//
//	p.str(name) string            "" when absent
//	p.reqStr(name) string         absent/empty -> MissingParameter
//	p.intOr(name, def) int        not an integer -> InvalidParameterValue
//	p.reqInt(name) int
//	p.floatOr(name, def), p.boolOr(name, def), p.timeOr(name)
//	p.has(name) bool              the key or anything nested under it
//	p.list("InstanceId") / p.list("InstanceIds.member") []string
//	p.structs("Filter") / p.structs("Tags.member") []params (one view per element)
//	p.sub("LaunchTemplate") params (nested structure)
//	p.tags("Tag") map[string]string   Key/Value lists
//	p.filters() []filter          ec2query Filter.N.Name/Value.M
//	p.fingerprint(exclude...)     canonical form for idempotency
//
// Getters record the first error; check `if err := c.err(); err != nil`
// once after reading. Build errors with &APIError{Code, Message, Status}
// (Status 0 = 400) or errMissingParameter, errInvalidParameterValue,
// errInvalidParameterCombination, errValidation (Auto Scaling spelling:
// ValidationError). Any non-APIError becomes InternalError (500).
//
// Answering. Return a struct whose fields carry encoding/xml tags (no
// XMLName field). For EC2 the fields are written inside
// <ActionResponse xmlns=...><requestId/>...</ActionResponse>; for Auto
// Scaling inside <ActionResponse><ActionResult>...</ActionResult>
// <ResponseMetadata/></ActionResponse> (return nil for actions without a
// result). Lists are `xml:"instanceSet>item"` (EC2) and
// `xml:"Instances>member"` (Auto Scaling). Times: format with ts(t). The
// EC2 item shapes in ec2xml.go (instanceXML via r.instanceXML(in),
// tagXML, stateXML) are reusable.
//
// Launching. r.launch(spec launchSpec, min, max) ([]*instance, error)
// starts between min and max instances in one reservation, or none with
// InsufficientInstanceCapacity (or the validation error: unknown type ->
// InvalidParameterValue, unknown AMI -> InvalidAMIID.NotFound/Malformed,
// unknown subnet -> InvalidSubnetID.NotFound, unknown SG ->
// InvalidGroup.NotFound, architecture mismatch, Spot max price below the
// Spot price -> SpotMaxPriceTooLow). launchSpec fields: instanceType,
// subnetID ("" = default subnet), imageID, keyName, sgIDs, iamProfile,
// userData, blockDevices, tags (copied onto the instance), spot and
// maxPrice (each Spot instance gets a one-time Spot request sir-...),
// owner (your fleet id / sfr- id / "asg:NAME", reported back in
// InstanceInfo.Owner and used by you to find your instances), weight
// (weighted capacity, 0 = 1), clientToken, launchTplID/launchTplVer. A
// launch template version becomes a spec with
// lt, v, err := r.resolveLaunchTemplate(id, name, version); spec := v.data.spec().
// Capacity pools: r.pool(type, az).available(); ICE errors: r.iceError.
// Subnets: r.subnets, r.subnetBy[id] (fields id, az).
//
// Instances: r.instances[id] (*instance: id, state, typ.name, subnet.az,
// subnet.id, owner, weight, spot, spotRequestID, tags, launchTime);
// r.order holds them in launch order (skip in.purged). in.live() is
// pending or running. r.terminate(in, reasonUserTerminate) and r.stop(in,
// reasonUserStop) start the transitions and return the previous state.
//
// Learning that an instance went away. Append to r.onInstanceGone a
// func(in *instance, at time.Time); it runs under the lock, once, when an
// instance stops being live (shutting-down, stopping, or a Spot
// interruption's termination), whoever caused it. Append to r.tickers a
// func(now time.Time) that runs at the end of every advance (use it to
// top up maintain-type fleets and groups, expire ValidUntil, ...). Use
// r.schedule(at, func(at time.Time)) for a one-off timed event. r.now is
// the current simulated time inside handlers (also c.now).
//
// Idempotency: result, found, err := r.idempotent(namespace, token,
// c.p.fingerprint("ClientToken")) before acting, and r.remember(namespace,
// token, fingerprint, result) after success; a reused token with other
// parameters gives IdempotentParameterMismatch.
//
// Ids: r.newID("i-") (17 hex), r.newShortID("sir-", 8),
// r.newUUIDID("fleet-") / r.newUUIDID("sfr-").
//
// Tags: CreateTags reaches instances, sir-, lt- and subnet- ids itself;
// register other resources with r.tagLookups["fleet-"] = func(id string)
// (map[string]string, error) returning the resource's live tag map (or the
// AWS not-found error).
//
// # Clients
//
// ClientConfig's HTTP client copies each request body before sending it:
// the SDK closes its body wrapper as soon as a round trip returns, and
// against a loopback server net/http may still be probing that body, get
// io.EOF as an error and close the connection mid-response ("use of closed
// network connection"). Clients of the simulator built another way should
// use ClientConfig's HTTPClient.
//
// Options.LaunchDelay and TerminateDelay: 0 means the 1s default; NoDelay
// (-1) means "at the next tick".
package awssim
