// Command ohfpd is the Open Host Factory Plugin daemon: it holds HF's
// requests, machines and templates in memory, persists them in Badger,
// provisions on AWS and reconciles with AWS in the background. The ohfp
// client forwards HF's calls to it over a Unix socket.
//
// Its help (usage.go) is also the source of the ohfpd(8) man page.
//
//	ohfpd [--config FILE] [--simulate] [--rebuild-from-cloud] [--adopt-cluster-id OLD] [--take-over-ibm [PROVIDER=]FILE]
//	ohfpd --check-config [--config FILE]
//	ohfpd simulate [--listen ADDR] [--region NAME]
//	ohfpd import-hf [-o FILE] [--name NAME] DIR
//	ohfpd version | help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/config"
)

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT is set: the RSS target at 10,000 machines is 100 MB, of which
// ~30 MB are the binary and Badger's mapped files, and the live heap at
// 10,000 machines is ~30 MB. Above 10,000 machines the limit grows with
// them (memoryLimit), so that it never holds a larger live heap to a
// limit it cannot meet: the collector would then run without pause.
const defaultMemoryLimit = 64 << 20

// memoryLimit is the soft memory limit for n machines held: the default
// up to 10,000, then 4 KiB more a machine (twice what one holds live).
func memoryLimit(n int) int64 {
	return defaultMemoryLimit + 4<<10*int64(max(n-10000, 0))
}

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "simulate":
			return simulateMain(args[1:], stdout, stderr)
		case "import-hf":
			return importHFMain(args[1:], stdout, stderr)
		case "version":
			if len(args) > 1 {
				return usageError(stderr, "version takes no argument")
			}
			fmt.Fprintf(stdout, "ohfpd %s\n", version)
			return 0
		case "help":
			usage(stdout)
			return 0
		}
	}
	fs := flag.NewFlagSet("ohfpd", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/ohfp/config.yaml", "the ohfpd configuration `file`")
	check := fs.Bool("check-config", false, "validate the configuration and its templates, then exit")
	simulate := fs.Bool("simulate", false, "run against a simulated AWS region started in-process (no AWS account needed)")
	rebuild := fs.Bool("rebuild-from-cloud", false, "rebuild requests and machines from the cloud's tags before serving (after losing the state directory)")
	takeOver := fs.String("take-over-ibm", "", "take over the hosts and requests listed in IBM's plugin's state `[PROVIDER=]FILE` (aws-db.json in $HF_PROVIDER_WORKDIR) before serving")
	adopt := fs.String("adopt-cluster-id", "", "re-tag the hosts of the `old` cluster_id with the configured one and record it in the state directory (after changing cluster_id)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "unexpected argument %q; subcommands: %s", fs.Arg(0), strings.Join(subcommands, ", "))
	}
	if *showVersion {
		fmt.Fprintf(stdout, "ohfpd %s\n", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "ohfpd: %v\n", err)
		return 1
	}
	if *check {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		n := 0
		for _, p := range cfg.Providers {
			n += len(p.Templates)
		}
		if cfg.HA != nil {
			line, err := checkShared(context.Background(), cfg, *simulate)
			if err != nil {
				fmt.Fprintf(stderr, "ohfpd: %s: %v\n", *cfgPath, err)
				return 1
			}
			fmt.Fprintln(stdout, line)
		}
		if !*simulate {
			line, err := checkCredentialScripts(context.Background(), cfg) // credscript.go
			if err != nil {
				fmt.Fprintf(stderr, "ohfpd: %s: %v\n", *cfgPath, err)
				return 1
			}
			if line != "" {
				fmt.Fprintln(stdout, line)
			}
			line, err = checkQueues(context.Background(), cfg) // events.go
			if err != nil {
				fmt.Fprintf(stderr, "ohfpd: %s: %v\n", *cfgPath, err)
				return 1
			}
			if line != "" {
				fmt.Fprintln(stdout, line)
			}
		}
		fmt.Fprintf(stdout, "%s: OK (%s, %s)\n", *cfgPath, english.Plural(len(cfg.Providers), "provider"), english.Plural(n, "template"))
		return 0
	}

	// A soft memory limit keeps the garbage of large cloud listings (a
	// 10,000-instance DescribeInstances decodes ~300 MB of XML) from
	// inflating the resident size; GOMEMLIMIT overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit) // then memoryLimit, once the machines are known
	}
	// Trap signals before the slow start-up (opening the store can block).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	level := cfg.SlogLevel()
	if os.Getenv("HF_LOGLEVEL") != "" && cfg.Providers[0].AcceptPropagatedLogSetting {
		level = levelFromEnv() // IBM's ACCEPT_PROPAGATED_LOG_SETTING
	}
	log := newLogger(level, cfg.LogFormat, stderr)
	d := &daemon{cfgPath: *cfgPath, cfg: cfg, log: log, simulate: *simulate, rebuild: *rebuild, adopt: *adopt}
	if *takeOver != "" {
		t, err := parseTakeover(*takeOver, cfg) // takeover.go
		if err != nil {
			fmt.Fprintf(stderr, "ohfpd: %v\n", err)
			return 1
		}
		d.takeover = t
	}
	if err := d.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("ohfpd stopped", "err", err)
		return 1
	}
	return 0
}

// simulateMain runs the simulated AWS region alone, for any AWS client.
func simulateMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ohfpd simulate", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4566", "`address` to serve the simulated region on")
	region := fs.String("region", "us-east-1", "the simulated region's name")
	launch := fs.Duration("launch-delay", time.Second, "how long instances stay pending")
	term := fs.Duration("terminate-delay", time.Second, "how long instances stay shutting-down")
	// On by default, as on AWS (see internal/awssim/doc.go).
	consistency := fs.Duration("consistency", awssim.DefaultConsistencyWindow, "eventual consistency: new resources stay invisible to other calls for up to this long, as on AWS; 0: at once")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "simulate: unexpected argument %q", fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := newLogger(levelFromEnv(), "auto", stderr)
	log.Info("simulated AWS region serving", "listen", *listen, "region", *region,
		"hint", fmt.Sprintf("aws --endpoint-url http://%s --region %s ec2 describe-instances", *listen, *region))
	cons := *consistency
	if cons <= 0 {
		cons = awssim.Immediate
	}
	err := awssim.ListenAndServe(ctx, *listen, awssim.Options{Region: *region, LaunchDelay: *launch, TerminateDelay: *term, Consistency: cons, Logger: log})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ohfpd simulate: %v\n", err)
		return 1
	}
	return 0
}

// importHFMain turns IBM's awsprov_config.json and awsprov_templates.json
// in DIR into an ohfpd YAML configuration. The notes (what is not carried
// and would have made a difference) are in the YAML; on standard error too
// when the YAML goes to a file. Exit 0 when the result loads, 1 when not
// (the YAML is written all the same, to be fixed), 2 on a usage error.
func importHFMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ohfpd import-hf", flag.ContinueOnError)
	out := fs.String("o", "", "write the YAML to `file` instead of standard output")
	name := fs.String("name", "", "the provider's `name`")
	// DIR may come before the options, as ohfp config import-hf DIR -o FILE has it.
	var dirs []string
	for rest := args; ; {
		if code, done := parseFlags(fs, rest, stdout, stderr); done {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) != 1 {
		return usageError(stderr, "usage: ohfpd import-hf [-o FILE] [--name NAME] DIR, DIR holding awsprov_templates.json (and awsprov_config.json)")
	}
	yml, notes, err := config.ImportHF(dirs[0], config.ImportOptions{Name: *name, Output: *out})
	if len(yml) == 0 {
		fmt.Fprintf(stderr, "ohfpd import-hf: %v\n", err)
		return 1
	}
	if *out != "" {
		if werr := os.WriteFile(*out, yml, 0o640); werr != nil {
			fmt.Fprintf(stderr, "ohfpd import-hf: %v\n", werr)
			return 1
		}
		for _, n := range notes {
			fmt.Fprintf(stderr, "note: %s\n", n)
		}
	} else if _, werr := stdout.Write(yml); werr != nil {
		fmt.Fprintf(stderr, "ohfpd import-hf: %v\n", werr)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "ohfpd import-hf: %v\n", err)
		return 1
	}
	if *out != "" {
		fmt.Fprintf(stderr, "wrote %s\n", *out)
	}
	return 0
}

// plural is "1 provider", "2 providers".
