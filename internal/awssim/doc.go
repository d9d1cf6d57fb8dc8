// Package awssim is a simulated AWS region that the real aws-sdk-go-v2
// clients (and the AWS CLI, boto3, Terraform) talk to over HTTP exactly as
// they talk to AWS: EC2 and Auto Scaling in the AWS Query protocols
// (form-encoded requests, XML answers, XML errors), SSM and the Price List
// Query API in JSON 1.1, SQS in JSON 1.0 (with the EventBridge events the
// region emits).
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
// controlHandler in levers.go). Calls and Errors count requests per action,
// ErrorCodes errors per action and code (dropped connections and answers
// under their own pseudo-codes); /_sim/counts serves all three.
//
// # Time
//
// The state advances lazily: every request, lever and inspection helper
// first calls r.advance(clock.Now()) under the lock, which runs the due
// events (in time order, each with its own due time), then every ticker.
// Tick does the same for tests; Run(ctx, interval) does it on a wall-clock
// ticker (ListenAndServe starts it). Instances are pending for
// Options.LaunchDelay, shutting-down (or stopping) for TerminateDelay, and
// terminated ones stay visible for up to an hour (see "Terminated
// instances" below).
//
// # AWS behaviour modelled, and where it comes from
//
// Each behaviour below follows the AWS page named with it; where awssim is
// still more lenient than AWS, it says so.
//
// Dry runs (ec2.go runInstances; EC2 API Reference, "RunInstances",
// DryRun, and "Common client error codes"). RunInstances with DryRun=true
// checks the permission first (a Faults.Denied action is answered 403
// UnauthorizedOperation, "You are not authorized to perform this
// operation."), then the parameters as a launch would (type, AMI,
// subnet, security groups), and launches nothing: 412 DryRunOperation,
// "Request would have succeeded, but DryRun flag is set." CreateFleet and
// RequestSpotFleet take DryRun too (API Reference, "CreateFleet" and
// "RequestSpotFleet", DryRun: "Checks whether you have the required
// permissions for the action, without actually making the request, and
// provides an error response. If you have the required permissions, the
// error response is DryRunOperation. Otherwise, it is
// UnauthorizedOperation."): a denied action is UnauthorizedOperation; an
// allowed one is checked as a request would be (its parameters, that its
// launch templates and versions and its overrides' subnets exist, the
// ValidUntil) and answers DryRunOperation, creating nothing; what a
// fleet meets only when it launches (an unknown AMI, a type not offered,
// capacity) is not checked, as a fleet reports those after it is created.
// No AWS page says how much of the request a fleet dry run checks beyond
// the permission: awssim checks what it would refuse at once. Other
// actions' DryRun is not modelled.
//
// Refused actions (levers.go, Faults.Denied). An EC2 action is refused
// 403 UnauthorizedOperation (above). A Price List, Auto Scaling or
// Service Quotas action is refused 400 AccessDeniedException, "User: ARN
// is not authorized to perform: PREFIX:ACTION" (Amazon EC2 Auto Scaling
// API Reference, "Granting IAM permissions for Amazon EC2 Auto Scaling
// actions": "If you receive an AccessDeniedException when calling an
// Amazon EC2 Auto Scaling API action, it means that the ... credentials
// that you are using do not have the required permissions"; Service
// Quotas API Reference, GetServiceQuota, Errors: AccessDeniedException,
// "You do not have sufficient permission to perform this action.").
//
// Service Quotas (quotas.go). GetServiceQuota in JSON 1.1, X-Amz-Target
// ServiceQuotasV20190624.GetServiceQuota (Service Quotas API Reference,
// "GetServiceQuota": ServiceCode and QuotaCode required; the answer's
// Quota holds ServiceCode, ServiceName, QuotaArn, QuotaCode, QuotaName,
// Value, Unit, Adjustable, GlobalQuota, as the AWS CLI User Guide's
// service-quotas examples show for ec2 L-1216C47A). The EC2 vCPU quota
// codes and names are those of the EC2 User Guide, "On-Demand Instance
// quotas" (ec2-on-demand-instances.html, which links each name to its
// code: Standard L-1216C47A, G and VT L-DB2E81BA, P L-417A185B, F
// L-74FC7D96, X L-7295265B, Inf L-1945791B, DL L-6E869C2A, Trn
// L-2C3B7624, HPC L-F7808C92, High Memory L-43DA4232) and "Spot Instance
// quotas" (using-spot-limits.html, names and defaults; that page does not
// print the codes: L-34B43A08 for All Standard Spot Instance Requests is
// the code Service Quotas shows, the others are as the console shows
// them). Values are those the /_sim/quotas lever applied; a code never
// applied, or a service other than ec2, is NoSuchResourceException ("The
// specified resource does not exist"; GetServiceQuota: "If the applied
// quota value is not available for a quota, the quota is not
// retrieved"). Denied (Faults.Denied
// "GetServiceQuota") is AccessDeniedException; throttling
// TooManyRequestsException. Lenient: no usage metrics, default values
// (GetAWSDefaultServiceQuota) or other services.
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
// Taking over IBM's plugin's hosts (reconcile/takeover.go) relies on the
// two rules above and on eventual consistency below: instances named by
// IBM's state file are described through the instance-id filter (a purged
// one is simply absent, never an error), a CreateTags refused with
// InvalidInstanceID.NotFound is asked again rather than taken as gone,
// and the tags written are folded in from memory, not looked up through
// the tag filters, which lag the write.
//
// Credential scripts (provider/aws/credscript.go) print what the SDKs'
// credential_process prints: AWS SDKs and Tools Reference Guide,
// "credential_process"
// (https://docs.aws.amazon.com/sdkref/latest/guide/setting-global-credential_process.html):
// JSON with Version 1, AccessKeyId, SecretAccessKey, SessionToken and
// Expiration, "ISO8601 timestamp for when the credentials expire"; the
// SDK's aws.CredentialsCache asks the provider again once they expire
// (less its ExpiryWindow). awssim reads only the access key id of each
// signature (GET /_sim/actions), which is how tests see which
// credentials signed a call; it does not expire them.
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
// Eventual consistency (consistency.go; Options.Consistency, the
// SetConsistency lever, /_sim/consistency, ohfpd simulate --consistency).
// EC2 Developer Guide, "Eventual consistency in the Amazon EC2 API"
// (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
// "if you run a command to modify or describe the resource that you just
// created, its ID might not have propagated throughout the system, and you
// will get an error responding that the resource does not exist"; after
// RunInstances, DescribeInstances and TerminateInstances may answer
// InvalidInstanceID.NotFound, which "does not mean the instance was or will
// be terminated". On by default: every new instance, its Spot instance
// request, EC2 Fleet, Spot Fleet request and Auto Scaling group gets a
// visibility time drawn uniformly in [0, window] (default
// DefaultConsistencyWindow, 2 s; AWS publishes no figure, its guide says to
// retry "starting with a couple of seconds"). Before it, lookups by id
// answer the resource's NotFound (InvalidInstanceID.NotFound,
// InvalidSpotInstanceRequestID.NotFound, InvalidFleetId.NotFound,
// InvalidSpotFleetRequestId.NotFound, Auto Scaling's "not found"
// ValidationError, fleetIdDoesNotExist in DeleteFleets), listings omit it,
// CreateTags refuses it. Tags CreateTags adds to an instance show in its
// tagSet at once but reach the tag filters (tag:, tag-key, tag-value) only
// after a delay drawn the same way. The creating call and its retries with
// the same client token always see the resource. Still lenient: state
// changes (a terminated instance still described running), fleet and group
// changes (ModifyFleet, SetDesiredCapacity) and launch templates are
// consistent at once; the fleets and groups describe their own instances
// (DescribeFleetInstances, a group's Instances) as soon as they launch them.
//
// Fleets taken over from another plugin (ohfpd --take-over-ibm; fleet.go,
// spotfleet.go). API Reference, DescribeSpotFleetInstances: "Describes the
// running instances for the specified Spot Fleet", its activeInstanceSet
// "refreshed periodically and might be out of date"; DescribeFleetInstances:
// "Describes the running instances for the specified EC2 Fleet". ohfp
// lists an IBM fleet's instances with them so a fleet is taken over whole,
// and, as the list may be late, never relies on it to end a fleet: API
// Reference, DeleteFleets: without TerminateInstances "the EC2 Fleet
// enters the deleted_running state, and the instances continue to run";
// "For instant fleets, EC2 Fleet must terminate the instances ... A
// deleted instant fleet with running instances is not supported" (awssim
// refuses it per fleet, fleetNotInDeletableState); CancelSpotFleetRequests
// TerminateInstances (default false) likewise. Still lenient: awssim's
// instance lists are never out of date.
//
// Instance attributes (attribute.go). API Reference,
// DescribeInstanceAttribute
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceAttribute.html):
// "You can specify only one attribute at a time"; Attribute is one of the
// InstanceAttributeName values. userData answers the user data the
// instance was launched with (UserData: "If you are using an AWS SDK or
// command line tool, Base64-encoding is performed for you ... Otherwise,
// you must provide Base64-encoded text", API_UserData.html), base64 as
// sent: from RunInstances, from the launch template version a fleet or
// group launched with, from a Spot Fleet launch specification; an instance
// without user data has an empty userData element. instanceType and
// instanceInitiatedShutdownBehavior are answered too; the other documented
// attributes are refused (Unsupported) rather than invented, an unknown
// name is InvalidParameterValue, an unknown instance
// InvalidInstanceID.NotFound.
//
// Volumes (volumes.go). Each instance has the EBS volumes its block
// device mappings name: the root volume (/dev/xvda, deleted on
// termination; BlockDeviceMapping for /dev/xvda sets its size and type)
// and one per other mapping, with their ids in the instance's
// blockDeviceMapping (API Reference, InstanceBlockDeviceMapping,
// EbsInstanceBlockDevice). CreateTags reaches vol- ids and the volumes keep
// their tags (Tagging your Amazon EC2 resources: volumes are taggable; an
// unknown volume is InvalidVolume.NotFound). DescribeVolumes
// (API_DescribeVolumes.html) lists them by VolumeId.N or all, with the
// filters volume-id, attachment.instance-id, attachment.device,
// attachment.delete-on-termination, availability-zone, volume-type,
// status and the tag filters, MaxResults 5-500 (not with VolumeId.N) and
// NextToken; state in-use while attached. When the instance terminates, a
// volume deleted on termination is gone (InvalidVolume.NotFound), the
// others stay available and detached. A volume is visible when its
// instance is (eventual consistency). Still lenient: volumes are not
// created, attached or deleted on their own (CreateVolume, AttachVolume,
// DeleteVolume are not modelled); TagSpecifications of ResourceType volume
// at launch are accepted and not applied; a kept volume stays available
// for the life of the region.
//
// Fleet errors and history (fleethistory.go). API Reference, CreateFleet
// and FleetData: Errors and Instances are "Supported only for fleets of
// type instant" (awssim answers them for instant fleets only; request and
// maintain fleets leave them empty); DescribeFleetHistory: "EC2 Fleet events
// are delayed by up to 30 seconds before they can be described ... EC2 Fleet
// events are available for 48 hours" (each event here describable after
// its own draw in [0, HistoryDelay]; lastEvaluatedTime is now minus 30 s);
// EventInformation lists the sub-types. DescribeFleetHistory and
// DescribeSpotFleetRequestHistory record the fleet's state changes
// (fleet-change / fleetRequestChange: submitted, active, deleted_*,
// cancelled_*, expired), launches and terminations (instance-change /
// instanceChange: launched, terminated) and launch failures: each failed
// pool as launchSpecTemporarilyBlacklisted (EC2 Fleet: service-error; Spot
// Fleet: information), and allLaunchSpecsTemporarilyBlacklisted
// (service-error / error) when a top-up launched nothing; the description
// holds the pool and EC2's error code and message; the same failures are
// recorded again at most every five minutes. An instant fleet's
// ActivityStatus is fulfilled once CreateFleet returns, whatever it
// launched. Still lenient: EC2 Fleet information events are recorded as
// service-error (its EventType has no information value); the
// descriptions are awssim's wording, not EC2's; no event for ModifyFleet
// (modify_in_progress / modify_succeeded).
//
// MaxResults. DescribeSpotFleetRequests: "Specify a value between 1 and
// 1000. The default value is 1000" (API Reference, earlier editions of
// DescribeSpotFleetRequests); DescribeFleets, DescribeFleetHistory and
// DescribeSpotFleetRequestHistory take the same bounds here (the current
// API Reference states no range for them: an assumption).
//
// AMI aliases (instances.go, resolveAlias). EC2 User Guide, "Use a Systems
// Manager parameter instead of an AMI ID"; API Reference,
// FleetLaunchTemplateOverridesRequest ImageId: resolve:ssm:NAME "will
// resolve to an AMI ID on launch ... This parameter is only available for
// fleets of type instant. For fleets of type maintain and request, you must
// specify the AMI ID in the launch template." Launch templates store the
// alias (DescribeLaunchTemplateVersions shows it, or the AMI with
// ResolveAlias); RunInstances, instant fleets and Auto Scaling groups
// resolve it at launch; CreateFleet of type request or maintain and
// RequestSpotFleet whose launch template (or override) holds an alias are
// refused with InvalidParameterValue. Still lenient: the error code and
// message EC2 gives there are not documented (it may accept the request
// and fail its launches instead); parameter versions and labels are not
// modelled (NAME:N resolves to NAME's current value).
//
// Auto Scaling (asg.go). User Guide, "Use instance scale-in protection":
// "Instance scale-in protection starts when the instance state is
// InService" and, when all instances are protected, a scale-in lowers the
// desired capacity without terminating; awssim honours
// NewInstancesProtectedFromScaleIn and SetInstanceProtection (API
// Reference), and a scale-in takes Pending instances and unprotected ones
// only. User Guide, "Verify a scaling activity": Create/Update
// AutoScalingGroup, SetDesiredCapacity and DetachInstances only ask for a
// scaling activity, which runs 1 to 5 s later (launches then show as
// "Launching a new EC2 instance" InProgress until the instance runs, Failed
// with the state reason if it fails to launch). API Reference,
// TerminateInstanceInAutoScalingGroup: "This call simply makes a
// termination request. The instance is not terminated immediately." The
// instance is Terminating at once and terminated by EC2 up to 5 s later; a
// second request for it is refused ("already terminating"). Still lenient:
// the termination policy is AZ balance then newest (not AWS's default
// policy's launch-template and billing-hour steps); no lifecycle hooks,
// warm pools, cooldowns or health-check grace period.
//
// Launch failures and state reasons (levers.go, LaunchFailures; instances
// .go). API Reference, StateReason lists the codes; EC2 User Guide,
// "Troubleshoot Amazon EC2 instance launch issues", "Instance terminates
// immediately": an instance goes from pending to terminated. The
// SetLaunchFailures lever (/_sim/launch-failures) makes that share of new
// instances, whoever launches them, fail with Server.InternalError,
// Server.InsufficientInstanceCapacity, Client.InternalError,
// Client.InvalidSnapshot.NotFound or Client.VolumeLimitExceeded;
// ShutdownFromOS (/_sim/os-shutdown) shuts instances down from their OS:
// stopped, or terminated with InstanceInitiatedShutdownBehavior terminate
// (and for one-time Spot Instances), with Client.InstanceInitiatedShutdown.
// Server.SpotInstanceShutdown and Server.SpotInstanceTermination come from
// Spot interruptions (above).
//
// What ohfp's capacity memory and failure breaker rely on (no lever of
// their own: the existing ones make each case). API Reference, "Error
// codes" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
// InsufficientInstanceCapacity says there is not enough capacity for the
// request and suggests waiting, other instance types, or (in its message)
// another Availability Zone: it is about one pool, an instance type in a
// zone: the SetCapacity lever (/_sim/capacity, per type and zone) makes
// RunInstances and fleets answer it there and only there. InstanceLimitExceeded,
// VcpuLimitExceeded and MaxSpotInstanceCountExceeded are the account's
// limits, not a pool's; InvalidAMIID.NotFound, InvalidSubnetID.NotFound,
// InvalidGroup.NotFound and UnauthorizedOperation (the Faults.Denied
// lever) are refusals no retry fixes. API Reference, CreateFleetError and
// DescribeFleetError: each error of an instant fleet names the
// launchTemplateAndOverrides (instance type, subnet, zone) and lifecycle
// (spot | on-demand) it is about; awssim fills both. API Reference,
// StateReason: Server.InternalError ("An internal error caused the
// instance to terminate during launch"), Client.InternalError,
// Client.InvalidSnapshot.NotFound and Client.VolumeLimitExceeded end an
// instance during launch; Server.InsufficientInstanceCapacity is capacity;
// Server.SpotInstanceTermination, Client.UserInitiatedShutdown and
// Client.InstanceInitiatedShutdown are ends HF or the cloud chose (the
// SetLaunchFailures lever makes the first kind). Spot Fleet and request or
// maintain EC2 Fleet history events name the pool only in their free-text
// description: ohfp does not parse it, so they do not feed the capacity
// memory (a fleet's own allocation strategy already avoids the pools).
//
// Terminated instances (instances.go, retention). API Reference,
// DescribeInstances: "Recently terminated instances might appear in the
// returned results. This interval is usually less than one hour." Each
// terminated instance stays visible for its own draw in [5 min, 1 h]
// (Options.TerminatedRetention fixes it instead).
//
// Lost answers (levers.go, Faults.DropAnswerRate). The call runs, then the
// connection is closed without its answer: what client tokens are for (EC2
// API Reference, "Ensure idempotency in Amazon EC2 API requests").
//
// EventBridge events into SQS (sqs.go, instancestatus.go). What
// EventBridge rules targeting a queue deliver; every queue gets every
// event, each message body one event: version "0", id, detail-type,
// source, account, time (seconds, UTC), region, resources, detail.
//   - "EC2 Instance State-change Notification", source aws.ec2, detail
//     {"instance-id", "state"}, resources the instance's ARN, for every
//     state change (EC2 User Guide, "State change events for Amazon EC2
//     instances": pending, running, stopping, stopped, shutting-down,
//     terminated).
//   - "EC2 Spot Instance Interruption Warning", source aws.ec2, detail
//     {"instance-id", "instance-action": terminate, stop or hibernate},
//     emitted when the interruption begins, two minutes before it acts
//     (EC2 User Guide, "Spot Instance interruption notices", "EC2 Spot
//     Instance Interruption Warning event").
//   - "EC2 Instance Rebalance Recommendation", source aws.ec2, detail
//     {"instance-id"} (EC2 User Guide, "EC2 instance rebalance
//     recommendations"), from the Rebalance lever.
//   - "AWS Health Event", source aws.health, detail {"eventArn",
//     "service": "EC2", "eventTypeCode" (AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED,
//     ..._STOP_SCHEDULED, ..._REBOOT_MAINTENANCE_SCHEDULED,
//     AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED,
//     AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED), "eventTypeCategory":
//     "scheduledChange", "startTime"/"endTime" in RFC 1123 ("Sat, 05 Jun
//     2021 15:10:09 GMT"), "statusCode": "upcoming", "eventDescription":
//     [{"language", "latestDescription"}], "affectedEntities":
//     [{"entityValue": instance id}]} (AWS Health User Guide, "Reference:
//     AWS Health events Amazon EventBridge schema"; "Monitoring events in
//     AWS Health with Amazon EventBridge"), from the ScheduleEvent lever.
//
// More lenient than AWS: each event is delivered at once, exactly once
// and in order (AWS: "best effort", usually within seconds; delivery at
// least once, so late, duplicated or out of order events occur); AWS
// Health's own delays are not modelled.
//
// SQS (sqs.go). The JSON protocol of the current SDKs: POST with
// X-Amz-Target AmazonSQS.<Action>, Content-Type
// application/x-amz-json-1.0; errors as {"__type":
// "com.amazonaws.sqs#QueueDoesNotExist", "message"} with the older query
// code in x-amzn-query-error (AWS.SimpleQueueService.NonExistentQueue;Sender)
// (Amazon SQS Developer Guide, "Amazon SQS AWS JSON protocol FAQs").
// ReceiveMessage (Amazon SQS API Reference): MaxNumberOfMessages 1-10
// (default 1), WaitTimeSeconds 0-20, a long poll that "returns sooner than
// WaitTimeSeconds" when a message arrives and an empty answer when none
// did; received messages are hidden for the visibility timeout (default
// 30 s) and come back after it unless deleted; each carries MD5OfBody,
// which the SDK checks. DeleteMessageBatch: 1-10 entries with distinct
// ids (EmptyBatchRequest, TooManyEntriesInBatchRequest,
// BatchEntryIdsNotDistinct), a failed entry (ReceiptHandleIsInvalid) in
// Failed beside the others' success. SendMessage: bodies up to 256 KiB.
// GetQueueUrl, GetQueueAttributes (ApproximateNumberOfMessages, ...),
// CreateQueue (names of 1-80 letters, digits, '-' and '_'). More lenient:
// no FIFO queues, message attributes, dead-letter queues, retention
// expiry or access policies; a stale receipt handle is refused at once.
//
// Instance status (instancestatus.go). DescribeInstanceStatus (EC2 API
// Reference): by InstanceId.N, or with filters and MaxResults 5-1000
// (not both: InvalidParameterCombination) and NextToken; only running
// instances unless IncludeAllInstances; each with instanceStatus and
// systemStatus (ok, impaired, not-applicable; details reachability
// passed/failed with impairedSince) and eventsSet (code, description,
// notBefore, notAfter, instanceEventId). Filters: event.code,
// instance-status.status, system-status.status, instance-state-name,
// availability-zone; another is refused. Scheduled event codes (EC2 User
// Guide, "Scheduled events for your instances"): instance-reboot,
// system-reboot, system-maintenance, instance-retirement, instance-stop.
// More lenient: checks pass from launch (AWS reports initializing for the
// first minutes), nothing fails a check by itself, and a scheduled event
// never acts (the instance is not retired at notBefore).
//
// Instance type offerings (offerings.go). DescribeInstanceTypeOfferings
// (EC2 API Reference, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html):
// "Lists the instance types that are offered for the specified location.
// If no location is specified, the default is to list the instance types
// that are offered in the current Region." LocationType region (the
// default), availability-zone or availability-zone-id (outpost is refused
// here: the region has none); filters instance-type and location (another
// is refused, as every describe's unknown filter); MaxResults 5-1000 and
// NextToken; each item instanceType, locationType, location
// (instanceTypeOfferingSet). A type the region does not have matches no
// offering: an empty list, not an error (the call filters, it does not
// look an id up). Every type of the region is offered in each of its
// zones. ohfp check asks it per template for the types in the zones of
// its subnets. DescribeImages, DescribeSubnets and DescribeSecurityGroups
// by id answer InvalidAMIID.NotFound, InvalidSubnetID.NotFound and
// InvalidGroup.NotFound for an id that does not exist (API Reference,
// "Error codes"); ohfp check asks each id on its own, so that one unknown
// id does not hide another.
//
// Prices (pricing.go; the /_sim/prices lever, SetPrices). Spot price
// history follows the EC2 API Reference, "DescribeSpotPriceHistory": the
// changes between StartTime and EndTime (default now) for each instance
// type, Availability Zone and product description (Linux/UNIX and
// Linux/UNIX (Amazon VPC)), plus the last change before StartTime, "the
// effective price as of the start time"; filters availability-zone,
// instance-type, product-description, spot-price and timestamp, another
// filter name refused (InvalidParameterValue); MaxResults up to 1000,
// NextToken pagination; at most 90 days back (EC2 User Guide, "Spot
// Instance pricing history"). Each type starts with one price per AZ (a
// stable discount off on-demand, the price Spot launches and fleets
// use); the lever adds a point timestamped now. Answers are oldest first.
// The Price List Query API's GetProducts follows the AWS Price List
// Service API Reference, "GetProducts" and "Filter" (JSON 1.1, X-Amz-Target
// AWSPriceListService.GetProducts; TERM_MATCH, EQUALS, CONTAINS, ANY_OF,
// NONE_OF; MaxResults 1-100; FormatVersion aws_v1; PriceList entries are
// JSON documents in strings, as the Billing and Cost Management User
// Guide, "Reading the price list file", shows them: product.attributes
// and terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD). Only
// ServiceCode AmazonEC2 has products: per catalogue type, Linux, shared
// tenancy, preInstalledSw NA, and capacitystatus Used,
// UnusedCapacityReservation and AllocatedCapacityReservation (so a query
// that leaves capacitystatus out gets three, as from AWS). A denied
// GetProducts (Faults.Denied) is AccessDeniedException. Lenient: the
// Price List API is served at the simulator's one endpoint (AWS serves it
// from us-east-1, eu-central-1 and ap-south-1 only); no Windows, RHEL,
// dedicated or reserved offers; Spot prices never change by themselves.
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
