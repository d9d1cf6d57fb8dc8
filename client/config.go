package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/rpc"
)

// cmdConfig is `ohfp config reload|validate FILE|import-hf DIR [-o FILE] [--name NAME]`.
func cmdConfig(ctx context.Context, inv *invocation, out *output) error {
	const usage = "config reload | config validate FILE | config import-hf DIR [-o FILE] [--name NAME]"
	if len(inv.args) == 0 {
		return usageErr("missing subcommand; usage: ohfp %s", usage)
	}
	sub, args := inv.args[0], inv.args[1:]
	if inv.flags[optOutput] != "" && sub != "import-hf" {
		return usageErr("-o goes with config import-hf")
	}
	if inv.flags[optName] != "" && sub != "import-hf" {
		return usageErr("--name goes with config import-hf")
	}
	if out.json && sub != "reload" {
		return usageErr("--json goes with config reload; config %s prints ohfpd's own output", sub)
	}
	switch sub {
	case "reload":
		if len(args) != 0 {
			return usageErr("unexpected argument %q; usage: ohfp config reload", args[0])
		}
		return configReload(ctx, inv, out)
	case "validate":
		if len(args) != 1 {
			return usageErr("usage: ohfp config validate FILE")
		}
		return execDaemon(inv, "--check-config", "--config", args[0])
	case "import-hf":
		if len(args) != 1 {
			return usageErr("usage: ohfp config import-hf DIR [-o FILE] [--name NAME]")
		}
		dargs := []string{"import-hf"}
		if o := inv.flags[optOutput]; o != "" {
			dargs = append(dargs, "-o", o)
		}
		if n := inv.flags[optName]; n != "" {
			dargs = append(dargs, "--name", n) // the provider's name (default: what hostProviders.json calls DIR)
		}
		return execDaemon(inv, append(dargs, args[0])...)
	}
	return usageErr("unknown subcommand %q; usage: ohfp %s", sub, usage)
}

// configReload asks ohfpd to re-read its configuration.
func configReload(ctx context.Context, inv *invocation, out *output) error {
	raw, err := callDaemon(ctx, inv, apitype.MethodReload, nil, nil, nil)
	if err != nil {
		var re *rpc.Error
		if errors.As(err, &re) {
			code := 1
			if noPermission(err) {
				code = exitNoPerm
			}
			return &exitError{code: code, msg: "ohfp config reload: " + re.Message}
		}
		return err
	}
	if out.json {
		return out.printJSON(raw)
	}
	var r apitype.ReloadAnswer
	if err := decode("reload", raw, &r); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out.w, orText(r.Message, "configuration reloaded"))
	return err
}

// execDaemon replaces ohfp with ohfpd and args: its output and exit code
// are the command's. Parsing YAML needs code the client must not link.
func execDaemon(inv *invocation, args ...string) error {
	path, err := findDaemon(inv.lookup)
	if err != nil {
		return err
	}
	argv := append([]string{path}, args...)
	err = syscall.Exec(path, argv, os.Environ())
	return fmt.Errorf("cannot run %s: %v", path, err)
}

// findDaemon locates ohfpd: $OHFPD, else beside the ohfp executable, else
// in PATH.
func findDaemon(lookup func(string) (string, bool)) (string, error) {
	if v, ok := lookup("OHFPD"); ok && v != "" {
		if !executable(v) {
			return "", fmt.Errorf("$OHFPD is %s, which is not an executable file", v)
		}
		return v, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "ohfpd")
		if executable(p) {
			return p, nil
		}
	}
	path, _ := lookup("PATH")
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, "ohfpd")
		if executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("cannot find ohfpd (it checks configuration files): install it beside ohfp or in PATH, or set OHFPD=/path/to/ohfpd")
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
