package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/store"
)

// The disk format of the aggregates: one record type each, with its JSON
// names written out and a version, converted to and from the domain types
// field by field. The domain structs' own JSON tags play no part in it:
// renaming a domain field breaks the conversion's compilation, renaming a
// record field breaks TestRecordsGolden. Changing a record means a new
// store schema: bump recordVersion, add a migration that converts the old
// records (internal/store/migrations.go), and keep the old golden file as
// the new migration's input.
//
// Not persisted: Machine.Seq (creation order within one process),
// Machine.AwaitingClaim (a mirror of its request's, rebuilt by load) and
// Machine.AZ (said again by the first listing after a start). Nor are
// price estimates (State.Prices): derived data, fetched again after a
// start (package cost), so the records need no new version for them.
//
// The records spell the domain's named words (Kind, Phase, State) and HF's
// (Status, Result) as plain strings, converted here: the types are the
// code's, the strings the disk's.
//
// Compatibility rule relied on since before versions: a request record
// without awaitingClaim (written before the field existed, or claimed:
// false is left out) is never taken as unclaimed.

// recordVersion is the version of the request, machine and instance type
// records: the store schema that introduced their format.
const recordVersion = 2

// A record of another version than recordVersion was not migrated: load
// refuses it rather than guess.
func checkVersion(key string, v int) error {
	if v != recordVersion {
		return fmt.Errorf("record %s has format version %d, this ohfpd reads version %d (store schema %d): the store's migrations did not convert it", key, v, recordVersion, store.SchemaVersion)
	}
	return nil
}

type requestRecord struct {
	V          int       `json:"v"`
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId,omitempty"`
	Units      int       `json:"units,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	// RcAccount and ClusterName (LSF's) were added without a new schema:
	// absent is none, what an older record means; an older ohfpd reading
	// a newer record launches without them (no RC_ACCOUNT tag or export).
	RcAccount     string    `json:"rcAccount,omitempty"`
	ClusterName   string    `json:"clusterName,omitempty"`
	ClientToken   string    `json:"clientToken,omitempty"`
	Phase         string    `json:"phase,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	NextAttempt   time.Time `json:"nextAttempt,omitzero"`
	Handle        string    `json:"handle,omitempty"`
	HandleCapped  bool      `json:"handleCapped,omitempty"`
	HandleDeleted bool      `json:"handleDeleted,omitempty"`
	TakenOver     bool      `json:"takenOver,omitempty"`
	FallbackUnits int       `json:"fallbackUnits,omitempty"`
	Pool          int       `json:"pool,omitempty"`
	// PoolOrder was added without a new schema: absent (every record
	// before it, and any launch without alternatives) is the template's
	// order, which is what an older ohfpd reading a newer record uses;
	// each alternative's client token names the alternative itself, not
	// its position, so either order retries a pool with its own token.
	PoolOrder     []int    `json:"poolOrder,omitempty"`
	LaunchError   string   `json:"launchError,omitempty"`
	Shortfall     string   `json:"shortfall,omitempty"`
	RetryNote     string   `json:"retryNote,omitempty"`
	Rebuilt       bool     `json:"rebuilt,omitempty"`
	UnitsFromTag  bool     `json:"unitsFromTag,omitempty"`
	MachineIDs    []string `json:"machineIds,omitempty"`
	Unknown       []string `json:"unknown,omitempty"`
	TerminateSent bool     `json:"terminateSent,omitempty"`
	// AwaitingClaim: absent is false, i.e. claimed (see the rule above).
	AwaitingClaim bool      `json:"awaitingClaim,omitempty"`
	AnswerPending bool      `json:"answerPending,omitempty"`
	Unclaimed     bool      `json:"unclaimed,omitempty"`
	Status        string    `json:"status,omitempty"`
	Message       string    `json:"message,omitempty"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
}

func encodeRequest(r *domain.Request) ([]byte, error) {
	return json.Marshal(requestRecord{
		V: recordVersion, ID: r.ID, Kind: string(r.Kind), Provider: r.Provider, TemplateID: r.TemplateID,
		Units: r.Units, CreatedAt: r.CreatedAt, RcAccount: r.RcAccount, ClusterName: r.ClusterName, ClientToken: r.ClientToken, Phase: string(r.Phase),
		Attempts: r.Attempts, NextAttempt: r.NextAttempt, Handle: r.Handle, HandleCapped: r.HandleCapped,
		HandleDeleted: r.HandleDeleted, TakenOver: r.TakenOver, FallbackUnits: r.FallbackUnits, Pool: r.Pool, PoolOrder: r.PoolOrder,
		LaunchError: r.LaunchError, Shortfall: r.Shortfall, RetryNote: r.RetryNote, Rebuilt: r.Rebuilt, UnitsFromTag: r.UnitsFromTag,
		MachineIDs: r.MachineIDs, Unknown: r.Unknown, TerminateSent: r.TerminateSent,
		AwaitingClaim: r.AwaitingClaim, AnswerPending: r.AnswerPending, Unclaimed: r.Unclaimed, Status: string(r.Status), Message: r.Message,
		FinishedAt: r.FinishedAt,
	})
}

func decodeRequest(key string, b []byte) (*domain.Request, error) {
	var rec requestRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", key, err)
	}
	if err := checkVersion(key, rec.V); err != nil {
		return nil, err
	}
	return &domain.Request{
		ID: rec.ID, Kind: domain.Kind(rec.Kind), Provider: rec.Provider, TemplateID: rec.TemplateID,
		Units: rec.Units, CreatedAt: rec.CreatedAt, RcAccount: rec.RcAccount, ClusterName: rec.ClusterName, ClientToken: rec.ClientToken, Phase: domain.Phase(rec.Phase),
		Attempts: rec.Attempts, NextAttempt: rec.NextAttempt, Handle: rec.Handle, HandleCapped: rec.HandleCapped,
		HandleDeleted: rec.HandleDeleted, TakenOver: rec.TakenOver, FallbackUnits: rec.FallbackUnits, Pool: rec.Pool, PoolOrder: rec.PoolOrder,
		LaunchError: rec.LaunchError, Shortfall: rec.Shortfall, RetryNote: rec.RetryNote, Rebuilt: rec.Rebuilt, UnitsFromTag: rec.UnitsFromTag,
		MachineIDs: rec.MachineIDs, Unknown: rec.Unknown, TerminateSent: rec.TerminateSent,
		AwaitingClaim: rec.AwaitingClaim, AnswerPending: rec.AnswerPending, Unclaimed: rec.Unclaimed, Status: hf.Status(rec.Status), Message: rec.Message,
		FinishedAt: rec.FinishedAt,
	}, nil
}

type machineRecord struct {
	V                int       `json:"v"`
	ID               string    `json:"id"`
	RequestID        string    `json:"requestId"`
	ReturnID         string    `json:"returnId,omitempty"`
	Provider         string    `json:"provider"`
	TemplateID       string    `json:"templateId"`
	Name             string    `json:"name,omitempty"`
	PrivateIP        string    `json:"privateIp,omitempty"`
	PublicIP         string    `json:"publicIp,omitempty"`
	State            string    `json:"state"`
	StateReason      string    `json:"stateReason,omitempty"`
	InstanceType     string    `json:"instanceType,omitempty"`
	Spot             bool      `json:"spot,omitempty"`
	SpotRequest      string    `json:"spotRequest,omitempty"`
	Weight           int       `json:"weight"`
	LaunchTime       time.Time `json:"launchTime,omitzero"`
	Tags             string    `json:"tags,omitempty"`
	Result           string    `json:"result"`
	Message          string    `json:"message,omitempty"`
	Doomed           bool      `json:"doomed,omitempty"`
	TerminateSent    bool      `json:"terminateSent,omitempty"`
	Handle           string    `json:"handle,omitempty"`
	CapacityReleased bool      `json:"capacityReleased,omitempty"`
	IDTagged         bool      `json:"idTagged,omitempty"`
	ReclaimedAt      time.Time `json:"reclaimedAt,omitzero"`
	InterruptAt      time.Time `json:"interruptAt,omitzero"`
	DrainAt          time.Time `json:"drainAt,omitzero"`
	DrainBy          time.Time `json:"drainBy,omitzero"`
	DrainReason      string    `json:"drainReason,omitempty"`
	LastSeen         time.Time `json:"lastSeen,omitzero"`
	EndedAt          time.Time `json:"endedAt,omitzero"`
	Unlisted         bool      `json:"unlisted,omitempty"`
}

func encodeMachine(m *domain.Machine) ([]byte, error) {
	return json.Marshal(machineRecord{
		V: recordVersion, ID: m.ID, RequestID: m.RequestID, ReturnID: m.ReturnID, Provider: m.Provider,
		TemplateID: m.TemplateID, Name: m.Name, PrivateIP: m.PrivateIP, PublicIP: m.PublicIP,
		State: string(m.State), StateReason: m.StateReason, InstanceType: m.InstanceType, Spot: m.Spot,
		SpotRequest: m.SpotRequest, Weight: m.Weight, LaunchTime: m.LaunchTime, Tags: m.Tags,
		Result: string(m.Result), Message: m.Message, Doomed: m.Doomed, TerminateSent: m.TerminateSent,
		Handle: m.Handle, CapacityReleased: m.CapacityReleased, IDTagged: m.IDTagged, ReclaimedAt: m.ReclaimedAt,
		InterruptAt: m.InterruptAt, LastSeen: m.LastSeen, EndedAt: m.EndedAt,
		DrainAt: m.DrainAt, DrainBy: m.DrainBy, DrainReason: m.DrainReason, Unlisted: m.Unlisted,
	})
}

func decodeMachine(key string, b []byte) (*domain.Machine, error) {
	var rec machineRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", key, err)
	}
	if err := checkVersion(key, rec.V); err != nil {
		return nil, err
	}
	return &domain.Machine{
		ID: rec.ID, RequestID: rec.RequestID, ReturnID: rec.ReturnID, Provider: rec.Provider,
		TemplateID: rec.TemplateID, Name: rec.Name, PrivateIP: rec.PrivateIP, PublicIP: rec.PublicIP,
		State: domain.State(rec.State), StateReason: rec.StateReason, InstanceType: rec.InstanceType, Spot: rec.Spot,
		SpotRequest: rec.SpotRequest, Weight: rec.Weight, LaunchTime: rec.LaunchTime, Tags: rec.Tags,
		Result: hf.Result(rec.Result), Message: rec.Message, Doomed: rec.Doomed, TerminateSent: rec.TerminateSent,
		Handle: rec.Handle, CapacityReleased: rec.CapacityReleased, IDTagged: rec.IDTagged, ReclaimedAt: rec.ReclaimedAt,
		InterruptAt: rec.InterruptAt, LastSeen: rec.LastSeen, EndedAt: rec.EndedAt,
		DrainAt: rec.DrainAt, DrainBy: rec.DrainBy, DrainReason: rec.DrainReason, Unlisted: rec.Unlisted,
	}, nil
}

// typeRecord is a cached instance type description.
type typeRecord struct {
	V         int    `json:"v"`
	Name      string `json:"name"`
	VCPUs     int    `json:"vcpus"`
	Cores     int    `json:"cores"`
	MemoryMiB int    `json:"memoryMiB"`
	Arch      string `json:"arch"`
}

func encodeType(ti provider.InstanceTypeInfo) ([]byte, error) {
	return json.Marshal(typeRecord{V: recordVersion, Name: ti.Name, VCPUs: ti.VCPUs, Cores: ti.Cores, MemoryMiB: ti.MemoryMiB, Arch: ti.Arch})
}

func decodeType(key string, b []byte) (provider.InstanceTypeInfo, error) {
	var rec typeRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return provider.InstanceTypeInfo{}, fmt.Errorf("record %s: %w", key, err)
	}
	if err := checkVersion(key, rec.V); err != nil {
		return provider.InstanceTypeInfo{}, err
	}
	return provider.InstanceTypeInfo{Name: rec.Name, VCPUs: rec.VCPUs, Cores: rec.Cores, MemoryMiB: rec.MemoryMiB, Arch: rec.Arch}, nil
}
