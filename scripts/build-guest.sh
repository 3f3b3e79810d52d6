#!/usr/bin/env bash
# Build, once, the tiny Linux guest the demo VM and the e2e tests boot: Debian's cloud
# kernel and busybox-static, unpacked (not installed), and an initramfs whose /init
# loads the virtio-net driver stack, prints a ready marker on the serial console and
# then reports every network device that appears or disappears, and every change of the
# carrier of the devices it has set up (a NIC's link state).  Having a real guest
# driver is what makes hot-unplug real: the guest acknowledges the ACPI eject.
# Usage: build-guest.sh OUTDIR   (writes OUTDIR/vmlinuz and OUTDIR/initrd.img)
set -euo pipefail
out=$(realpath -m "${1:?usage: build-guest.sh OUTDIR}")
stamp="$out/.built-v2"
[ -f "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && exit 0

echo "build-guest: building the tiny guest into $out (about 20 s, once)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$kpkg" ]; then  # a fresh machine may have no package lists yet
  apt-get update -q >/dev/null
  kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
# apt's _apt user must be able to write the download folder.
chmod 0777 "$work"
apt-get download -q "$kpkg" busybox-static >/dev/null 2>&1 || apt-get download "$kpkg" busybox-static
for deb in ./*.deb; do dpkg-deb -x "$deb" pkgroot; done

kver=$(ls pkgroot/lib/modules)
mods=pkgroot/lib/modules/$kver/kernel
root=initramfs
mkdir -p $root/bin $root/proc $root/sys $root/dev $root/modules
cp pkgroot/bin/busybox $root/bin/busybox
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net; do
  cp "$mods/$m.ko" "$root/modules/$(basename "$m").ko"
done
cat > $root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  insmod /modules/$m.ko
done
ls /sys/class/net > /tmp.netdevs 2>/dev/null
echo "HOTPLUG-GUEST-READY"
# The carrier of each device that is up, as "NETDEV-CARRIER <mac> up|down" when first seen and
# whenever it changes (the host's <link state>); builtins only: this runs every 0.2 s.  State is
# kept per name and MAC, so a NIC plugged again under a reused name reports afresh.
report_carrier() {
  for d in $(cat /tmp.netdevs); do
    [ "$d" = lo ] && continue
    c=; read -r c 2>/dev/null < "/sys/class/net/$d/carrier"
    case "$c" in 1) c=up ;; 0) c=down ;; *) continue ;; esac
    mac=; read -r mac 2>/dev/null < "/sys/class/net/$d/address"
    was=; read -r was 2>/dev/null < "/tmp.carrier.$d.$mac"
    [ "$c" = "$was" ] && continue
    echo "$c" > "/tmp.carrier.$d.$mac"
    echo "NETDEV-CARRIER $mac $c"
  done
}
# Report network devices as they come and go, one line each on the serial console.
while true; do
  ls /sys/class/net > /tmp.now
  for d in $(cat /tmp.now); do
    grep -qx "$d" /tmp.netdevs || { ip link set "$d" up 2>/dev/null; echo "NETDEV-ADDED $d $(cat /sys/class/net/$d/address)"; }
  done
  for d in $(cat /tmp.netdevs); do
    grep -qx "$d" /tmp.now || { echo "NETDEV-REMOVED $d"; rm -f /tmp.carrier."$d".*; }
  done
  mv /tmp.now /tmp.netdevs
  report_carrier
  sleep 0.2
done
INIT
chmod +x $root/init
mkdir -p "$out"
cp "pkgroot/boot/vmlinuz-$kver" "$out/vmlinuz"
(cd $root && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img"
chmod 0644 "$out/vmlinuz" "$out/initrd.img"
touch "$stamp"
echo "build-guest: kernel $kver + busybox initramfs in $out"
