#!/usr/bin/env bash
# Installs the Python AMQP clients the interop tests run against (test/interop/python.test.ts):
# pika 1.2 and aioamqp 0.15, the Debian packages, for /usr/bin/python3. Does nothing when they are
# already importable. Non-interactive: CI has no stdin.
set -euo pipefail

if /usr/bin/python3 -c 'import pika, aioamqp' 2>/dev/null; then
  echo "pika and aioamqp are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q </dev/null
$SUDO apt-get install -y -q --no-install-recommends python3-pika python3-aioamqp </dev/null
/usr/bin/python3 -c 'import pika, aioamqp; print("pika", pika.__version__, "and aioamqp installed")'
