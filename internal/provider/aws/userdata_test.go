package awsprov

import (
	"context"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

var updateUD = flag.Bool("update", false, "rewrite testdata/userdata/*.golden")

// shippedUserData is the user-data template the package installs.
const shippedUserData = "../../../packaging/user_data.sh"

func goldenUD(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "userdata", name+".golden")
	if *updateUD {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (go test -update): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("user data differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func decodeUD(t *testing.T, b64 *string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(aws.ToString(b64))
	if err != nil {
		t.Fatalf("user data is not base64: %v", err)
	}
	return b
}

// TestUserDataAsEC2GetsIt: the user data each kind of template launches
// with, base64-decoded as EC2 receives it, through RunInstances and
// through the request's launch template (EC2 Fleet; Spot Fleet and ASG use
// the same data).
func TestUserDataAsEC2GetsIt(t *testing.T) {
	dir := t.TempDir()
	withMarker := filepath.Join(dir, "boot.sh")
	os.WriteFile(withMarker, []byte("#!/bin/sh\n%EXPORT_USER_DATA%\necho \"$zone\" > /etc/zone\n"), 0o644)
	plain := filepath.Join(dir, "plain.sh")
	os.WriteFile(plain, []byte("#!/bin/sh\necho plain\n"), 0o644)

	base := template.Template{TemplateID: "Template-VM-1", ImageID: "ami-1", VMType: "c5.large", ProviderName: "awsinst"}
	cases := []struct {
		name   string
		mutate func(*template.Template)
		call   template.Call // LSF's rc_account and cluster name
	}{
		// IBM's meaning: userData's variables at the marker of the
		// provider's user_data.sh (here the one the package ships).
		{"ibm_userdata_shipped_template", func(t *template.Template) {
			t.UserData = "zone=us_west_2a;rc_account=proj1"
			t.UserDataTemplate = shippedUserData
		}, template.Call{}},
		// LSF's rc_account and clusterName (SCRIPT_OPTIONS) exported in
		// IBM's order, quoted (they come from the caller).
		{"lsf_rc_account_clustername", func(t *template.Template) {
			t.UserData = "zone=us_west_2a"
			t.UserDataTemplate = shippedUserData
		}, template.Call{RcAccount: "proj X'1", ClusterName: "cl1"}},
		// No userData, an explicit user_data_template: still the script,
		// with template_id and providerName.
		{"template_without_vars", func(t *template.Template) { t.UserDataTemplate = shippedUserData }, template.Call{}},
		// userDataScript with a marker receives userData's variables.
		{"script_with_marker", func(t *template.Template) { t.UserData = "zone=a"; t.UserDataScript = withMarker }, template.Call{}},
		// userDataScript without a marker and no userData: as it is.
		{"script_verbatim", func(t *template.Template) { t.UserDataScript = plain }, template.Call{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := base
			c.mutate(&tpl)

			p, e, _, _ := newFakeProvider()
			if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: tpl, Units: 1, Tags: ohfpTags, RcAccount: c.call.RcAccount, ClusterName: c.call.ClusterName}); err != nil {
				t.Fatal(err)
			}
			got := decodeUD(t, e.runs[len(e.runs)-1].UserData)
			goldenUD(t, c.name, got)

			r := newFleetRig()
			ft := tpl
			ft.ProviderAPI, ft.FleetType = template.APIEC2Fleet, template.FleetInstant
			if _, err := r.p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-1", ClientToken: "tok", Template: ft, Units: 1, Tags: ohfpTags, RcAccount: c.call.RcAccount, ClusterName: c.call.ClusterName}); err != nil {
				t.Fatal(err)
			}
			if lt := decodeUD(t, r.f.createLT[0].LaunchTemplateData.UserData); string(lt) != string(got) {
				t.Errorf("the launch template's user data differs from RunInstances':\n%s", lt)
			}
		})
	}

	// None of them: no user data at all.
	p, e, _, _ := newFakeProvider()
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: base, Units: 1}); err != nil || e.runs[0].UserData != nil {
		t.Errorf("no script: user data %v, err %v", e.runs[0].UserData, err)
	}
	// userData with no script to receive it is never sent as user data.
	bad := base
	bad.UserData = "zone=a"
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: bad, Units: 1}); err == nil || !strings.Contains(err.Error(), "variables for a user-data script") {
		t.Errorf("userData without a script: err = %v", err)
	}
	bad.UserDataScript = plain
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: bad, Units: 1}); err == nil || !strings.Contains(err.Error(), "has no %EXPORT_USER_DATA% line") {
		t.Errorf("userData with a script without marker: err = %v", err)
	}
}

// TestPlacementEBSAndEFA: IBM's placementGroupName, tenancy, ebsOptimized
// and interfaceType/efaCount reach RunInstances and the launch template.
func TestPlacementEBSAndEFA(t *testing.T) {
	tpl := template.Template{TemplateID: "hpc", ImageID: "ami-1", VMType: "p5.48xlarge", SubnetIDs: []string{"subnet-a"},
		SecurityGroupIDs: []string{"sg-1", "sg-2"}, PlacementGroupName: "pg-hpc", Tenancy: "dedicated", EbsOptimized: true,
		InterfaceType: "efa", EfaCount: 3}
	p, e, _, _ := newFakeProvider()
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: tpl, Units: 1}); err != nil {
		t.Fatal(err)
	}
	in := e.runs[0]
	eq(t, "placement", aws.ToString(in.Placement.GroupName)+" "+string(in.Placement.Tenancy), "pg-hpc dedicated")
	eq(t, "ebs optimized", aws.ToBool(in.EbsOptimized), true)
	eq(t, "subnet and groups beside the interfaces", in.SubnetId == nil && in.SecurityGroupIds == nil, true)
	eq(t, "interfaces", len(in.NetworkInterfaces), 3)
	for i, n := range in.NetworkInterfaces {
		wantDev := int32(1)
		if i == 0 {
			wantDev = 0
		}
		eq(t, "interface", []any{aws.ToString(n.InterfaceType), aws.ToInt32(n.NetworkCardIndex), aws.ToInt32(n.DeviceIndex), aws.ToString(n.SubnetId), n.Groups, aws.ToBool(n.DeleteOnTermination)},
			[]any{"efa", int32(i), wantDev, "subnet-a", []string{"sg-1", "sg-2"}, true})
	}

	r := newFleetRig()
	ft := tpl
	ft.ProviderAPI, ft.FleetType = template.APIEC2Fleet, template.FleetInstant
	if _, err := r.p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-1", ClientToken: "tok", Template: ft, Units: 1, Tags: ohfpTags}); err != nil {
		t.Fatal(err)
	}
	d := r.f.createLT[0].LaunchTemplateData
	eq(t, "LT placement", aws.ToString(d.Placement.GroupName)+" "+string(d.Placement.Tenancy), "pg-hpc dedicated")
	eq(t, "LT ebs optimized", aws.ToBool(d.EbsOptimized), true)
	eq(t, "LT groups only on the interfaces", d.SecurityGroupIds == nil && len(d.NetworkInterfaces) == 3, true)
	eq(t, "LT interface 2", []any{aws.ToString(d.NetworkInterfaces[2].InterfaceType), aws.ToInt32(d.NetworkInterfaces[2].NetworkCardIndex), aws.ToInt32(d.NetworkInterfaces[2].DeviceIndex), d.NetworkInterfaces[2].Groups},
		[]any{"efa", int32(2), int32(1), []string{"sg-1", "sg-2"}})

	// Without them, nothing of it is sent.
	p, e, _, _ = newFakeProvider()
	plain := template.Template{TemplateID: "x", ImageID: "ami-1", VMType: "c5.large", SubnetIDs: []string{"subnet-a"}}
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: plain, Units: 1}); err != nil {
		t.Fatal(err)
	}
	eq(t, "plain", []any{e.runs[0].Placement == nil, e.runs[0].EbsOptimized == nil, len(e.runs[0].NetworkInterfaces), aws.ToString(e.runs[0].SubnetId)}, []any{true, true, 0, "subnet-a"})
	_ = types.TenancyDedicated
}
