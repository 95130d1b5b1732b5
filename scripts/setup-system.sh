#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, only when missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
declare -A need=(
  [iptables]=iptables [nft]=nftables [ip]=iproute2 [etcd]=etcd-server [etcdctl]=etcd-client
  [wrk]=wrk [haproxy]=haproxy [curl]=curl [python3]=python3 [java]=openjdk-17-jre-headless
  [keytool]=openjdk-17-jre-headless [openssl]=openssl [go]=golang-go [dig]=dnsutils
  [h2load]=nghttp2-client
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${need[$bin]}")
done
# iptables-legacy ships with the iptables package; make sure both variants exist.
command -v iptables-legacy >/dev/null 2>&1 || [ -x /usr/sbin/iptables-legacy ] || missing+=(iptables)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "dreammesh: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "dreammesh: not root and no sudo; tests needing ${missing[*]} will say they are skipped" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
