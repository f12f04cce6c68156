#!/bin/sh
# A local SMTP server on 127.0.0.1:8025 that prints every message it receives: try
# `pbxgate cdr report --mail` without a real mail server. aiosmtpd comes with pbxgate's test
# extra (pip install -e '.[test]'); PYTHON defaults to the project's virtualenv when present.
here=$(dirname "$0")
PYTHON=${PYTHON:-$( [ -x "$here/../../.venv/bin/python" ] && echo "$here/../../.venv/bin/python" || echo python3 )}
exec "$PYTHON" -m aiosmtpd -n -l 127.0.0.1:8025 -c aiosmtpd.handlers.Debugging stdout
