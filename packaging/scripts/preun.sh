#!/bin/sh
# RPM %preun, as %systemd_preun: on erase ($1 = 0) stop and disable airgapd
# before its files go. On an upgrade ($1 = 1) it keeps running; %postun
# restarts it on the new binary.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now airgapd.service >/dev/null 2>&1 || :
fi
exit 0
