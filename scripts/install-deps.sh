#!/usr/bin/env bash
# Installs what nines' demo, tests and benchmarks need on Debian: the
# MariaDB server with Galera, its backup tool, rsync and socat for state
# transfers, Debian's mysqld_exporter as the benchmark's peer, and promtool
# and amtool (packages prometheus and prometheus-alertmanager) to check the
# rule and Alertmanager files nines writes, Chromium for the console's
# browser tests, poppler-utils (pdftotext) to read the PDF reports back and
# haproxy, the load balancer the sandbox can put in front of a cluster
# (`nines sandbox galera --haproxy`) and whose config check
# (`haproxy -c`) the tests run; etcd (etcd-server, etcd-client), the
# store appliances lease their clusters from, and Debian's VictoriaMetrics
# as a real remote-write receiver. Packages already installed are
# skipped; the services of the ones installed here are neither started nor
# enabled, since nines runs its own servers on its own ports.
set -euo pipefail

packages=(mariadb-server mariadb-client galera-4 mariadb-backup rsync socat iproute2 procps
  prometheus-mysqld-exporter prometheus prometheus-alertmanager chromium poppler-utils haproxy
  etcd-server etcd-client victoria-metrics)
# The daemon each package would run; disabled again if installed here.
declare -A service_of=([mariadb-server]=mariadb [prometheus-mysqld-exporter]=prometheus-mysqld-exporter
  [prometheus]=prometheus [prometheus-alertmanager]=prometheus-alertmanager [haproxy]=haproxy
  [etcd-server]=etcd [victoria-metrics]=victoria-metrics)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  # Never start the distribution's own MariaDB or exporter: nines runs its
  # servers itself, on its own ports.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  trap '[ -n "$policy_added" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for p in "${missing[@]}"; do
      svc=${service_of[$p]:-}
      [ -n "$svc" ] && { $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true; }
    done
  fi
fi

# The sandbox runs Debian's haproxy by its path; say which package is
# missing rather than let a test fail on a missing file.
if [ ! -x /usr/sbin/haproxy ]; then
  echo "install-deps: /usr/sbin/haproxy not found after installing: package haproxy is missing" >&2
  exit 1
fi

# Sandboxes listen on fixed ports: the demo from 13306, the drills from
# 14306 upward, 1000 apart, past 32768 by the end of a run. The kernel
# hands out ports from 32768 to client sockets, and a node restarted by a
# drill then found its Galera or SST port taken by some connection
# ("bind: Address already in use"; two drills failed so). Keep
# 32768-51999 for listeners; clients still have 52000-60999. Not a
# root? Say so and go on: the drills may then fail on a taken port.
reserved=32768-51999
if [ -w /proc/sys/net/ipv4/ip_local_reserved_ports ]; then
  echo "$reserved" > /proc/sys/net/ipv4/ip_local_reserved_ports
else
  echo "install-deps: cannot reserve ports $reserved for the sandboxes (net.ipv4.ip_local_reserved_ports needs root); a drill may then find a node's port taken by a client socket" >&2
fi

# Go is needed to build; the machine image has it in /usr/local/go.
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
  echo "install-deps: Go 1.26 is required (https://go.dev/dl/); not found in PATH or /usr/local/go" >&2
  exit 1
fi
