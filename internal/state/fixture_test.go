package state

import (
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
)

// The content of storetest's schema-1 fixture as domain values: what a
// store ohfpd wrote at schema 1 must load into, once migrated. Between
// them they set every persisted field of Request and Machine.

func at(h, m int) time.Time { return time.Date(2026, 11, 30, h, m, 7, 123456789, time.UTC) }

func fixtureRequests() []*domain.Request {
	return []*domain.Request{
		{ // launched through a Spot Fleet, HF has not claimed it yet
			ID: "req-00000001", Kind: domain.KindAcquire, Provider: "aws", TemplateID: "spot-fleet",
			Units: 4, CreatedAt: at(10, 0), ClientToken: "ohfp-req-00000001-0", Phase: domain.PhaseLaunched,
			Attempts: 1, Handle: "sfr-0123456789abcdef0", MachineIDs: []string{"i-000000000000000a", "i-000000000000000b"},
			AwaitingClaim: true,
		},
		{ // complete and claimed: written before awaitingClaim existed
			ID: "req-00000002", Kind: domain.KindAcquire, Provider: "aws", TemplateID: "ondemand",
			Units: 1, CreatedAt: at(9, 0), ClientToken: "ohfp-req-00000002-0", Phase: domain.PhaseLaunched,
			Attempts: 1, MachineIDs: []string{"i-000000000000000c"},
			Status: hf.StatusComplete, Message: "1 of 1 units running", FinishedAt: at(9, 2),
		},
		{ // just recorded: queued, no cloud call yet
			ID: "req-00000003", Kind: domain.KindAcquire, Provider: "aws", TemplateID: "ondemand",
			Units: 2, CreatedAt: at(10, 5), ClientToken: "ohfp-req-00000003-0", Phase: domain.PhaseQueued,
		},
		{ // every persisted field set
			ID: "req-00000009", Kind: domain.KindAcquire, Provider: "aws-eu", TemplateID: "spot-hetero",
			Units: 8, CreatedAt: at(8, 0), ClientToken: "ohfp-req-00000009-2", Phase: domain.PhaseFailed,
			Attempts: 3, NextAttempt: at(8, 10), Handle: "fleet-0fedcba9876543210", HandleCapped: true,
			HandleDeleted: true, FallbackUnits: 3, Pool: 2, LaunchError: "InsufficientInstanceCapacity: no capacity",
			Shortfall: "Spot capacity short by 3 units", RetryNote: "AWS throttling, retrying in 8 s", Rebuilt: true,
			MachineIDs: []string{"i-000000000000000d"}, Unknown: []string{"host-x"}, TerminateSent: true,
			AwaitingClaim: true, Unclaimed: true, Status: hf.StatusCompleteWithError,
			Message: "HF never learned of this request", FinishedAt: at(8, 40),
		},
		{ // a return request
			ID: "ret-00000001", Kind: domain.KindReturn, Provider: "aws", CreatedAt: at(11, 0),
			MachineIDs: []string{"i-000000000000000c"}, Unknown: []string{"host-unknown.example"}, TerminateSent: true,
		},
	}
}

func fixtureMachines() []*domain.Machine {
	return []*domain.Machine{
		{ // pending, of a request HF has not claimed
			ID: "i-000000000000000a", RequestID: "req-00000001", Provider: "aws", TemplateID: "spot-fleet",
			State: domain.StatePending, InstanceType: "m5.large", Spot: true, Weight: 1,
			Result: hf.ResultExecuting, Handle: "sfr-0123456789abcdef0", LastSeen: at(10, 1),
		},
		{ // running
			ID: "i-000000000000000b", RequestID: "req-00000001", Provider: "aws", TemplateID: "spot-fleet",
			Name: "ip-10-0-0-11.ec2.internal", PrivateIP: "10.0.0.11", State: domain.StateRunning,
			InstanceType: "m5.xlarge", Spot: true, SpotRequest: "sir-abcdef12", Weight: 3, LaunchTime: at(10, 0),
			Tags: "team=hpc;cost=42", Result: hf.ResultSucceed, Handle: "sfr-0123456789abcdef0", LastSeen: at(10, 3),
		},
		{ // returned by HF and terminated
			ID: "i-000000000000000c", RequestID: "req-00000002", ReturnID: "ret-00000001", Provider: "aws",
			TemplateID: "ondemand", Name: "ip-10-0-0-12.ec2.internal", PrivateIP: "10.0.0.12",
			State: domain.StateTerminated, StateReason: "Client.UserInitiatedShutdown", InstanceType: "c5.large",
			Weight: 1, LaunchTime: at(9, 0), Result: hf.ResultSucceed, TerminateSent: true,
			LastSeen: at(11, 2), EndedAt: at(11, 2),
		},
		{ // every persisted field set
			ID: "i-000000000000000d", RequestID: "req-00000009", ReturnID: "ret-00000009", Provider: "aws-eu",
			TemplateID: "spot-hetero", Name: "ip-10-1-0-13.eu-west-1.compute.internal", PrivateIP: "10.1.0.13",
			PublicIP: "203.0.113.13", State: domain.StateGone, StateReason: "Server.SpotInstanceTermination",
			InstanceType: "r6i.2xlarge", Spot: true, SpotRequest: "sir-0000000d", Weight: 4, LaunchTime: at(8, 1),
			Tags: "a=b", Result: hf.ResultFail, Message: "instance vanished from the cloud before it was usable",
			Doomed: true, TerminateSent: true, Handle: "fleet-0fedcba9876543210", CapacityReleased: true,
			ReclaimedAt: at(8, 30), InterruptAt: at(8, 28), LastSeen: at(8, 29), EndedAt: at(8, 31),
		},
	}
}

func fixtureTypes() []provider.InstanceTypeInfo {
	return []provider.InstanceTypeInfo{
		{Name: "m5.large", VCPUs: 2, Cores: 1, MemoryMiB: 8192, Arch: "x86_64"},
		{Name: "m7g.xlarge", VCPUs: 4, Cores: 4, MemoryMiB: 16384, Arch: "arm64"},
	}
}
