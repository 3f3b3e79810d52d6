#!/usr/bin/env bash
# Make this machine able to run the project: system packages, /dev/kvm access,
# virtlogd + libvirtd (there is no systemd on the dev/CI machines).
# Idempotent: every step checks first and does nothing when already done.
set -euo pipefail

PACKAGES=(
  postgresql                 # server binaries for the private / test clusters
  libvirt-daemon-system libvirt-clients qemu-system-x86
  libvirt-dev pkg-config gcc python3-dev python3-venv   # to build libvirt-python
  libxml2-dev                # to build ovirt-engine-sdk-python's C extension (the SDK e2e test)
  iproute2 cpio dnsmasq-base # bridges + namespaces; guest initramfs; libvirt needs dnsmasq's binary
)
PACKAGES+=(chromium)  # the admin page tests drive Debian's chromium

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "ensure-host: not root and no sudo; run as root: $0" >&2; exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-host: installing Debian packages (a minute or two the first time): ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# libvirt re-probes QEMU on every start while /dev/kvm is 0600 (+4 s each); guests
# still run as type='qemu' (TCG) because KVM guests hang on these machines.
if [ -e /dev/kvm ] && [ "$(stat -c %a /dev/kvm)" != 660 ]; then
  $SUDO chgrp kvm /dev/kvm && $SUDO chmod 0660 /dev/kvm
fi

if ! $SUDO virsh -c qemu:///system version >/dev/null 2>&1; then
  echo "ensure-host: starting virtlogd and libvirtd"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl start virtlogd libvirtd
  else
    pgrep -x virtlogd >/dev/null || $SUDO /usr/sbin/virtlogd -d
    pgrep -x libvirtd >/dev/null || $SUDO /usr/sbin/libvirtd -d
  fi
  for _ in $(seq 50); do $SUDO virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.1; done
  $SUDO virsh -c qemu:///system version >/dev/null || { echo "ensure-host: libvirtd does not answer" >&2; exit 1; }
fi
