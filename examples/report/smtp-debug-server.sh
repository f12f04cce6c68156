#!/bin/sh
# A local SMTP server that prints every message it receives: try `--mail` without a real server.
# aiosmtpd comes with pbxgate's test extra (pip install -e '.[test]').
exec python -m aiosmtpd -n -l 127.0.0.1:8025 -c aiosmtpd.handlers.Debugging stdout
