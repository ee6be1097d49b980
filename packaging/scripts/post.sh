#!/bin/sh
# RPM %post, as Fedora's %systemd_post does it: on a first install ($1 = 1)
# apply the preset (on Rocky 9 that leaves airgapd disabled: edit
# /etc/airgapd/airgapd.yaml first, then `systemctl enable --now airgapd`).
# systemd must see the new or changed unit either way.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
	systemctl --no-reload preset airgapd.service >/dev/null 2>&1 || :
fi
# firewalld reads service files at start and reload only.
if systemctl is-active --quiet firewalld 2>/dev/null; then
	firewall-cmd --reload >/dev/null 2>&1 || :
fi
exit 0
