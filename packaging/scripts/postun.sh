#!/bin/sh
# RPM %postun, as %systemd_postun_with_restart: systemd forgets the removed
# unit or reads the upgraded one; on an upgrade ($1 >= 1) a running airgapd
# restarts on the new binary (try-restart leaves a stopped one stopped).
# SIGTERM leaves the gateway's NAT rules in place, so the nodes keep their
# way out across the restart.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
	systemctl try-restart airgapd.service >/dev/null 2>&1 || :
fi
exit 0
