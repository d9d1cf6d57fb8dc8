#!/bin/sh
# ohfp preremove (deb prerm / rpm %preun): on removal, stop and disable
# ohfpd.service and ohfpd.socket. On upgrade, do nothing: the socket stays
# open and the new package's postinstall restarts the service.
set -e

case "$1" in
    remove|0) ;;           # deb: remove; rpm: 0 packages left
    *) exit 0 ;;           # deb: upgrade, deconfigure, failed-upgrade; rpm: 1+
esac
command -v systemctl >/dev/null 2>&1 || exit 0
if [ -d /run/systemd/system ]; then
    systemctl stop ohfpd.service ohfpd.socket || true
fi
systemctl disable ohfpd.service ohfpd.socket >/dev/null 2>&1 || true
exit 0
