#!/bin/bash
# ohfp user-data template: the first-boot script of the hosts ohfp launches.
#
# ohfpd sends this file as the EC2 user data of every instance of a template
# that sets userData (and of every template when user_data_template is set
# in /etc/ohfp/config.yaml), after replacing the marker line (EXPORT_USER_DATA
# between percent signs, below) with one line per variable:
#
#   export <k>=<v>           for each k=v of the template's userData
#                            ("zone=us_west_2a;rc_account=proj1")
#   export rc_account='<a>'  LSF's rc_account of the request, when given
#                            (the instances are also tagged RC_ACCOUNT)
#   export template_id=<templateId>
#   export clustername='<c>' LSF's cluster (clusterName= in SCRIPT_OPTIONS),
#                            when given
#   export providerName=<the HF provider instance>
#
# This is what IBM's AWS plugins do with their user_data.sh, so a script
# written for them works here unchanged: copy it over this file (or name it
# in user_data_template). EC2 runs user data once, as root, through
# cloud-init; its output goes to the log below. EC2 takes at most 16 KiB of
# user data: ohfpd checks the filled-in script when it loads its
# configuration.
#
# Replace the bootstrap part with your site's: the host must join the
# cluster (start its EGO or LSF daemons) or Host Factory waits for it in
# vain. The example below starts Symphony's EGO from an image where it is
# installed under EGO_TOP.

logfile=/var/log/ohfp-user-data.log
exec >>"$logfile" 2>&1
echo "ohfp user data: start $(date '+%Y-%m-%d %H:%M:%S')"

%EXPORT_USER_DATA%

echo "ohfp user data: template ${template_id:-?} of provider ${providerName:-?}" \
    "account ${rc_account:--} cluster ${clustername:--}"

# --- Site bootstrap (an example: adapt it) ---------------------------------
EGO_TOP=${EGO_TOP:-/opt/ibm/spectrumcomputing}
if [ -f "$EGO_TOP/profile.platform" ]; then
    . "$EGO_TOP/profile.platform"
    # The resource group a template's hosts join can be given as a userData
    # variable (e.g. "rg=ComputeHosts") and used here.
    egosh ego start && echo "ohfp user data: EGO started"
else
    echo "ohfp user data: no $EGO_TOP/profile.platform; nothing started"
fi

echo "ohfp user data: end $(date '+%Y-%m-%d %H:%M:%S')"
