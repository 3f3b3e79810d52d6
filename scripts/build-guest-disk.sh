#!/usr/bin/env bash
# Build, once, the tiny guest as a bootable raw disk image, for VMs that boot from a disk rather
# than by direct kernel boot: one FAT file system over the whole disk (no partition table) holding
# the guest's kernel and initramfs, with SYSLINUX in its boot sector.  SeaBIOS boots the disk,
# SYSLINUX loads the kernel and the initramfs from it, and the guest is the same as by direct
# kernel boot (it prints the same ready marker).  The same disk in qcow2 too (VDSM's format 'cow'),
# self-contained.  Debian's syslinux, mtools and qemu-utils are unpacked, not installed, as
# build-guest.sh does with the kernel: no loop device, no mount, no root needed.
# Usage: build-guest-disk.sh GUESTDIR   (reads GUESTDIR/vmlinuz and initrd.img from build-guest.sh,
#                                        writes GUESTDIR/tiny-disk.img and tiny-disk.qcow2; again when
#                                        the kernel or the initramfs is newer)
set -euo pipefail
dir=$(realpath -m "${1:?usage: build-guest-disk.sh GUESTDIR}")
disk="$dir/tiny-disk.img"
qcow2="$dir/tiny-disk.qcow2"
fresh() { [ -f "$1" ] && [ "$1" -nt "$dir/vmlinuz" ] && [ "$1" -nt "$dir/initrd.img" ]; }
fresh "$disk" && fresh "$qcow2" && exit 0

echo "build-guest-disk: building the tiny guest's boot disk $disk (a few seconds, once)"
work=$(mktemp -d)
trap 'rm -rf "$work" "$disk.tmp" "$qcow2.tmp"' EXIT
cd "$work"
chmod 0777 "$work"  # apt's _apt user must be able to write the download folder
if ! apt-get download -q syslinux mtools qemu-utils >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get download syslinux mtools qemu-utils
fi
for deb in ./*.deb; do dpkg-deb -x "$deb" pkgroot; done
export PATH="$work/pkgroot/usr/bin:$PATH" MTOOLS_SKIP_CHECK=1  # syslinux runs mtools' mcopy, mattrib

# The kernel command line is devtools/guest.py's CMDLINE; SERIAL puts SYSLINUX's banner on the
# serial console too, where it shows that the guest came from the disk.
cat > syslinux.cfg <<'CFG'
SERIAL 0 115200
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND console=ttyS0 panic=-1 quiet
CFG
mib=$(( ($(stat -c %s "$dir/vmlinuz") + $(stat -c %s "$dir/initrd.img")) / 1048576 + 8 ))
truncate -s "${mib}M" disk.img
mformat -i disk.img -v TINYGUEST ::
mcopy -i disk.img "$dir/vmlinuz" "$dir/initrd.img" syslinux.cfg ::
syslinux --install disk.img
qemu-img convert -f raw -O qcow2 disk.img disk.qcow2  # no backing file: the agent refuses those
for image in disk.img:"$disk" disk.qcow2:"$qcow2"; do
  cp "${image%%:*}" "${image#*:}.tmp"
  chmod 0644 "${image#*:}.tmp"
  mv "${image#*:}.tmp" "${image#*:}"  # in one step: a VM never sees half a disk
done
echo "build-guest-disk: ${mib} MiB disk, FAT + SYSLINUX: $disk (raw), $qcow2 (qcow2)"
