#!/bin/sh
# ohfp postremove (deb postrm / rpm %postun): let systemd forget the removed
# units. The state in /var/lib/ohfp (requests and machines, possibly still
# running in AWS) and the user ohfp are kept on purpose; remove them by hand
# once no instance launched by ohfpd is left.
set -e

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
