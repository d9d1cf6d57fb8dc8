#!/bin/sh
# ohfp preinstall (deb preinst / rpm %pre): create the ohfp user and group
# before the files are unpacked, so /etc/ohfp gets group ohfp. The same
# entries ship in /usr/lib/sysusers.d/ohfp.conf.
set -e

if getent group ohfp >/dev/null 2>&1 && getent passwd ohfp >/dev/null 2>&1; then
    exit 0
fi
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers --inline \
        'g ohfp -' \
        'u ohfp - "Open Host Factory Plugin daemon" /var/lib/ohfp -'
    exit 0
fi
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false
getent group ohfp >/dev/null 2>&1 || groupadd --system ohfp
getent passwd ohfp >/dev/null 2>&1 || useradd --system --gid ohfp \
    --home-dir /var/lib/ohfp --no-create-home --shell "$nologin" \
    --comment "Open Host Factory Plugin daemon" ohfp
exit 0
