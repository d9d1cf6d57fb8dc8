#!/bin/sh
# ohfp postinstall (deb postinst / rpm %post).
#   first install: create /etc/ohfp, /run/ohfp, /var/lib/ohfp and enable
#                  ohfpd.socket and ohfpd.service WITHOUT starting them: edit
#                  /etc/ohfp/config.yaml first, then
#                  `systemctl start ohfpd.socket ohfpd.service`.
#   upgrade:       restart ohfpd if it is running (its socket stays open, so
#                  Host Factory's calls wait in the queue meanwhile).
# Works without systemd (containers, image builds): every systemctl step is
# skipped or done offline.
set -e

action=install
case "$1" in
    configure) [ -n "$2" ] && action=upgrade ;;   # deb: $2 is the old version
    abort-upgrade|abort-remove|abort-deconfigure) action=abort ;;
    1) action=install ;;                           # rpm: packages installed after
    [0-9]*) action=upgrade ;;                      # rpm: 2 or more on upgrade
esac

# The user normally exists already (preinstall); sysusers makes sure.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/ohfp.conf || true
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/ohfp.conf || true
else
    install -d -m 0750 -o root -g ohfp /etc/ohfp 2>/dev/null || true
    install -d -m 0750 -o ohfp -g ohfp /run/ohfp /var/lib/ohfp 2>/dev/null || true
fi

command -v systemctl >/dev/null 2>&1 || exit 0
running=no
[ -d /run/systemd/system ] && running=yes

[ "$running" = yes ] && systemctl daemon-reload || true
case "$action" in
    install)
        # Enable for the next boot; do not start an unconfigured daemon.
        systemctl enable ohfpd.socket ohfpd.service >/dev/null 2>&1 || \
            echo "ohfp: could not enable ohfpd.socket and ohfpd.service; enable them by hand" >&2
        echo "ohfp: edit /etc/ohfp/config.yaml and /etc/ohfp/awsprov_templates.json, check them with" >&2
        echo "      ohfpd --check-config, then: systemctl start ohfpd.socket ohfpd.service" >&2
        ;;
    upgrade)
        if [ "$running" = yes ]; then
            systemctl try-restart ohfpd.service || \
                echo "ohfp: ohfpd did not restart; see: systemctl status ohfpd" >&2
        fi
        ;;
esac
exit 0
