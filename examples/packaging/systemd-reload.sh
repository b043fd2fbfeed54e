#!/bin/sh
# After the unit is installed, upgraded or removed: systemd rereads its
# units, when it is the running init. Enabling the service is the
# administrator's choice, once /etc/default/snag selects what to trace.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || :
fi
