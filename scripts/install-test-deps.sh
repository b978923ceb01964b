#!/usr/bin/env bash
# Installs the Debian packages the integration tests drive: kcat (librdkafka's CLI) and Debian's
# python3-confluent-kafka (librdkafka from Python). Does nothing when they are already there; when they are
# missing and we are not root (or apt is unavailable) it says so and the tests that need them fail clearly.
set -uo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
/usr/bin/python3 -c 'import confluent_kafka' >/dev/null 2>&1 || need+=(python3-confluent-kafka)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${need[*]}; install them with apt-get (Debian) to run the integration tests" >&2
  exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
