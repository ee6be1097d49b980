#!/bin/sh
# RPM %post and %postun: let systemd see the added, changed or removed unit.
# Enables and starts nothing: edit /etc/airgapd/airgapd.yaml first.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
