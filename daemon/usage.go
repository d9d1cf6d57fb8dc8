package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// The help text is the one source of `ohfpd --help` and of the ohfpd(8)
// man page (packaging/mangen turns it into roff): sections are lines
// ending in ':', entries are "  TERM  description" with two spaces or
// more between, other lines are paragraphs.

// subcommands are ohfpd's subcommands, as the help lists them; the test
// checks that each is dispatched and each is in the help.
var subcommands = []string{"simulate", "import-hf", "version", "help"}

func usage(w io.Writer) {
	fmt.Fprintf(w, `ohfpd %s - the Open Host Factory Plugin daemon

ohfpd serves IBM Spectrum Symphony Host Factory's provider calls, which
the ohfp client forwards to it over a Unix socket: it keeps HF's requests,
machines and templates in memory and in its state folder, launches and
returns EC2 instances, and reconciles with AWS in the background. systemd
runs it as user ohfp (ohfpd.socket, ohfpd.service).

Usage:
  ohfpd [--config FILE] [--simulate] [--rebuild-from-cloud] [--adopt-cluster-id OLD] [--take-over-ibm [PROVIDER=]FILE]
                          serve HF's calls (what ohfpd.service runs)
  ohfpd --check-config [--config FILE]
                          check a configuration and its templates, then exit
  ohfpd simulate [--listen ADDR] [--region NAME]
                          serve a simulated AWS region to any AWS client
  ohfpd import-hf [-o FILE] [--name NAME] DIR
                          turn IBM's awsprov_config.json and awsprov_templates.json in DIR into a configuration
  ohfpd version           print the version (also --version)
  ohfpd help              this text (also --help, -h)

Options:
  --config FILE           the configuration (default /etc/ohfp/config.yaml; see ohfp.yaml(5))
  --check-config          check the configuration and the files it names, print OK or every problem with FILE:LINE:COLUMN, exit 0 or 1
  --simulate              run against a simulated AWS region started in-process: no AWS account needed
  --rebuild-from-cloud    rebuild requests and machines from the instances' tags before serving (after losing the state folder)
  --adopt-cluster-id OLD  the state folder belongs to cluster_id OLD and the configuration names another: re-tag OLD's instances with the new id and keep them, then record the new id (without it, ohfpd refuses to start)
  --take-over-ibm FILE    switching from IBM's AWS plugin: take over the hosts and requests its state file FILE lists (aws-db.json in the provider's work folder; PROVIDER=FILE for another provider than the first), with their ids, before serving (with ha: before acting, once the lease is taken); running it again changes nothing
  --version               print the version

simulate options:
  --listen ADDR           address to serve the simulated region on (default 127.0.0.1:4566)
  --region NAME           the simulated region's name (default us-east-1)
  --launch-delay D        how long instances stay pending (default 1s)
  --terminate-delay D     how long instances stay shutting-down (default 1s)
  --consistency D         eventual consistency: new resources stay invisible to other calls for up to D, as on AWS (default 2s; 0: visible at once)

import-hf options:
  -o FILE                 write the configuration to FILE (mode 0640) instead of standard output
  --name NAME             the provider's name (default: the name hostProviders.json beside DIR gives DIR, else aws)

Signals:
  SIGHUP                  re-read the configuration and templates (systemctl reload ohfpd); an invalid one is refused and the running one stays
  SIGTERM, SIGINT         stop accepting calls, finish those in flight, flush the state, exit 0

Environment:
  GOMEMLIMIT              the Go soft memory limit (default 64 MiB up to 10,000 machines, then 4 KiB more each)
  AWS_*                   the AWS SDK's settings where the configuration is silent (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...)
  HF_LOGLEVEL             HF's log level (LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, ... or debug, info, warn, error), ohfpd's own when the first provider has accept_propagated_log_setting; the client forwards HF's per call

Exit status:
  0                       success; for --check-config, the configuration is valid
  1                       a failure, said on standard error
  2                       a usage error

Files:
  /etc/ohfp/config.yaml   the configuration
  /etc/ohfp/awsprov_templates.json
                          the templates, in IBM's format
  /var/lib/ohfp           the state folder (requests and machines)
  /run/ohfp/ohfp.sock     the socket the ohfp client calls

See also:
  ohfp(1), ohfp.yaml(5), systemctl(1), journalctl(1); /usr/share/doc/ohfp/README.md
`, version)
}

// usageError reports a usage error on stderr, with where to look, and
// returns exit status 2.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "ohfpd: "+format+" (see ohfpd --help)\n", a...)
	return 2
}

// parseFlags parses args into fs. Asked for help (-h, --help), it prints
// the whole help on stdout and returns 0, done; a bad flag is a usage
// error, 2.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == flag.ErrHelp:
		usage(stdout)
		return 0, true
	case err != nil && fs.Name() == "ohfpd":
		return usageError(stderr, "%s", err), true
	case err != nil:
		return usageError(stderr, "%s: %s", strings.TrimPrefix(fs.Name(), "ohfpd "), err), true
	}
	return 0, false
}
