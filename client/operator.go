package main

import (
	"context"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"strconv"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/rpc"
)

// The operator's commands. ohfpd lets only root and members of its
// admin_groups make them; every one is recorded in the request's history
// (ohfp show) and ohfpd's log.

// cmdCancel is `ohfp cancel REQ [--return]`.
func cmdCancel(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 1, "cancel REQ [--return]"); err != nil {
		return err
	}
	return action(ctx, inv, out, apitype.MethodCancel, apitype.CancelArgs{Request: inv.args[0], Return: inv.flags[optReturn] != ""})
}

// cmdReturn is `ohfp return MACHINE... | --request REQ`.
func cmdReturn(ctx context.Context, inv *invocation, out *output) error {
	req := inv.flags[optRequest]
	switch {
	case req == "" && len(inv.args) == 0:
		return usageErr("missing argument; usage: ohfp return MACHINE... | ohfp return --request REQ")
	case req != "" && len(inv.args) > 0:
		return usageErr("name machines or --request REQ, not both")
	}
	return action(ctx, inv, out, apitype.MethodReturn, apitype.ReturnArgs{Machines: inv.args, Request: req})
}

// cmdDrain is `ohfp drain TEMPLATE [--provider NAME]`.
func cmdDrain(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 1, "drain TEMPLATE [--provider NAME]"); err != nil {
		return err
	}
	return action(ctx, inv, out, apitype.MethodDrain, apitype.DrainArgs{Template: inv.args[0], Provider: inv.flags[optProvider]})
}

// cmdUndrain is `ohfp undrain TEMPLATE [--provider NAME]`.
func cmdUndrain(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 1, "undrain TEMPLATE [--provider NAME]"); err != nil {
		return err
	}
	return action(ctx, inv, out, apitype.MethodUndrain, apitype.DrainArgs{Template: inv.args[0], Provider: inv.flags[optProvider]})
}

// action calls an operator method and prints its message.
func action(ctx context.Context, inv *invocation, out *output, method string, args any) error {
	raw, err := callDaemon(ctx, inv, method, args, nil, nil)
	if err != nil {
		return refusal(err)
	}
	if out.json {
		return out.printJSON(raw)
	}
	var a apitype.ActionAnswer
	if err := decode(method, raw, &a); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out.w, a.Message)
	return err
}

// refusal adds what to do to a permission refusal: exit 1 either way.
func refusal(err error) error {
	if rpc.CodeOf(err) == rpc.PermissionDenied {
		return fmt.Errorf("%w (run it as root, e.g. with sudo, or ask for a group in admin_groups)", err)
	}
	return err
}

// cmdCheck is `ohfp check [TEMPLATE] [--provider NAME]`: every template's
// dry runs against AWS, in a table; exit 1 when one failed.
func cmdCheck(ctx context.Context, inv *invocation, out *output) error {
	if len(inv.args) > 1 {
		return usageErr("unexpected argument %q; usage: ohfp check [TEMPLATE] [--provider NAME]", inv.args[1])
	}
	a := apitype.CheckArgs{Provider: inv.flags[optProvider]}
	if len(inv.args) == 1 {
		a.Template = inv.args[0]
	}
	raw, err := callDaemon(ctx, inv, apitype.MethodCheck, a, nil, nil)
	if err != nil {
		return refusal(err)
	}
	var rows []apitype.CheckRow
	if err := decode("check", raw, &rows); err != nil {
		return err
	}
	failed := 0
	for _, r := range rows {
		if !r.OK {
			failed++
		}
	}
	if out.json {
		if err := out.printJSON(raw); err != nil {
			return err
		}
	} else {
		tw := out.table("PROVIDER", "TEMPLATE", "CHECK", "RESULT")
		for _, r := range rows {
			res := r.Result
			if !r.OK {
				res = "FAIL " + res
			}
			row(tw, r.Provider, r.TemplateID, r.What, res)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return &exitError{code: 1, msg: "ohfp check: " + english.Plural(failed, "check") + " failed of " + strconv.Itoa(len(rows))}
	}
	return nil
}

// plural writes n and the noun, in the plural unless n is 1.

// cmdRearm is `ohfp rearm TEMPLATE [--provider NAME]`.
func cmdRearm(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 1, "rearm TEMPLATE [--provider NAME]"); err != nil {
		return err
	}
	return action(ctx, inv, out, apitype.MethodRearm, apitype.DrainArgs{Template: inv.args[0], Provider: inv.flags[optProvider]})
}
