#!/usr/bin/env bash
# Builds the VM tests' guest: a Debian root made by debootstrap from Debian's packages only, with
# Debian's kernel and initrd beside it, as a raw ext4 disk image. Run as root.
#
#   scripts/vm/build-image.sh [--tar] ARCH OUT_DIR
#
# ARCH is amd64 or arm64. OUT_DIR gets vmlinuz, initrd.img and rootfs.raw, plus `key`, the hash of
# this script and the guest files it installs: the harness rebuilds when the key differs. With --tar
# OUT_DIR gets root.tar instead, the root itself (kernel and initrd in its /boot): what a bake test
# unpacks afresh, installs into with --root and packs as its own disk. The machine's apt setup is not
# touched; the mirror is the first URI of /etc/apt/sources.list.d/debian.sources
# (NODE_PREP_VM_MIRROR overrides it).
#
# Another arch's root (arm64 on an amd64 machine) needs its own binaries run for debootstrap's
# second stage: this registers qemu-user-static's handler with binfmt_misc for that stage only (the F
# flag, so the chroot needs no copy of qemu), under a name of its own, and removes it afterwards
# (and unmounts binfmt_misc if it mounted it), so other programs on the machine never see it.
set -euo pipefail
tar_out=0
if [ "${1:-}" = --tar ]; then tar_out=1; shift; fi
arch=${1:?arch}
out=${2:?out dir}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${NODE_PREP_VM_MIRROR:-$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}

case "$arch" in
  amd64) kernel_pkg=linux-image-amd64; qemu_arch=x86_64 ;;
  arm64) kernel_pkg=linux-image-arm64; qemu_arch=aarch64 ;;
  *) echo "build-image: unknown arch $arch" >&2; exit 2 ;;
esac

# What the guest holds. systemd as PID 1 with dbus; libseccomp2 and kmod for containerd and runc;
# busybox-static for the smoke test's container. Then, with apt inside the root (debootstrap's own
# ordering cannot configure cloud-init's Python dependencies): openssh-server and python3 for
# Ansible (sudo for its become), cloud-init, locales, curl and ca-certificates for the cloud-init recipe
# (cloud-init is disabled unless a boot names a NoCloud seed).
packages="$kernel_pkg,systemd,systemd-sysv,dbus,libseccomp2,kmod,busybox-static,udev,iproute2,procps"
extra="openssh-server python3 cloud-init locales curl ca-certificates sudo"
# Another arch's guest is only baked and booted (the recipes run in the native one): no extras, which
# would cost minutes under emulation.
if [ "$arch" != "$(dpkg --print-architecture)" ]; then extra=""; fi

work=$(mktemp -d "${out%/}.build.XXXXXX")
binfmt=/proc/sys/fs/binfmt_misc
binfmt_entry=""
binfmt_mounted=0
binfmt_off() {
  if [ -n "$binfmt_entry" ] && [ -e "$binfmt/$binfmt_entry" ]; then echo -1 > "$binfmt/$binfmt_entry"; fi
  binfmt_entry=""
  if [ "$binfmt_mounted" = 1 ]; then umount "$binfmt"; binfmt_mounted=0; fi
}
# Debian's qemu-user-static handler (magic and mask from its binfmt.d file), as node-prep-vm-ARCH
# with flags P (argv[0] kept) and F (the interpreter opened now, so it runs inside the chroot too).
# The newest entry is matched first, so this one wins over one registered without F.
binfmt_on() {
  local conf=/usr/lib/binfmt.d/qemu-$qemu_arch.conf interp=/usr/bin/qemu-$qemu_arch-static
  [ -f "$conf" ] && [ -x "$interp" ] || { echo "build-image: a $arch root needs qemu-user-static ($conf, $interp)" >&2; exit 1; }
  if ! mountpoint -q "$binfmt"; then mount -t binfmt_misc binfmt_misc "$binfmt"; binfmt_mounted=1; fi
  binfmt_entry=node-prep-vm-$qemu_arch
  [ -e "$binfmt/$binfmt_entry" ] && echo -1 > "$binfmt/$binfmt_entry"
  # :name:type:offset:magic:mask:interpreter:flags
  IFS=: read -r _ _ type offset magic mask _ _ < "$conf"
  printf ':%s:%s:%s:%s:%s:%s:PF' "$binfmt_entry" "$type" "$offset" "$magic" "$mask" "$interp" > "$binfmt/register"
}
# Each step `|| true`: under set -e a failing step (umount of what is not mounted) would end the trap
# before the rest, and its status would become the script's.
trap 'binfmt_off || true; umount -R "$work/root/proc" "$work/root/sys" 2>/dev/null || true; rm -rf --one-file-system "$work"' EXIT
root="$work/root"
mkdir -p "$root"

t0=$(date +%s)
foreign=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then foreign=(--foreign); fi
failed() { tail -40 "$1" >&2; [ -f "$root/debootstrap/debootstrap.log" ] && tail -40 "$root/debootstrap/debootstrap.log" >&2; exit 1; }
debootstrap --variant=minbase --arch="$arch" "${foreign[@]}" --include="$packages" bookworm "$root" "$mirror" \
  > "$work/debootstrap.log" 2>&1 || failed "$work/debootstrap.log"
if [ "${#foreign[@]}" -gt 0 ]; then
  # An initrd with only the drivers the VM needs to mount its root: MODULES=most copies thousands of
  # modules one process each, twenty minutes and more under qemu-user.
  mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
  echo MODULES=list > "$root/etc/initramfs-tools/conf.d/node-prep-vm.conf"
  printf '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\nmanual_add_modules virtio_pci virtio_mmio virtio_blk ext4\n' \
    > "$root/etc/initramfs-tools/hooks/node-prep-vm"
  chmod 0755 "$root/etc/initramfs-tools/hooks/node-prep-vm"
  # The second stage runs the guest's own binaries: through qemu-user, for this stage only.
  binfmt_on
  chroot "$root" /debootstrap/debootstrap --second-stage > "$work/second-stage.log" 2>&1 || failed "$work/second-stage.log"
  binfmt_off
fi
echo "build-image: debootstrap $arch in $(( $(date +%s) - t0 )) s"

# No service starts inside the build root (policy-rc.d), and apt sees only the mirror.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
if [ -n "$extra" ]; then
mount -t proc proc "$root/proc"
# shellcheck disable=SC2086 # a word a package
if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $extra" > "$work/apt.log" 2>&1; then
  umount "$root/proc"; failed "$work/apt.log"
fi
# The locale cloud-init sets by default (en_US.UTF-8) exists, as on a distribution's cloud image.
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$root/etc/locale.gen"
chroot "$root" locale-gen > "$work/locale-gen.log" 2>&1 || { umount "$root/proc"; failed "$work/locale-gen.log"; }
umount "$root/proc"
fi
rm -f "$root/usr/sbin/policy-rc.d"
echo "build-image: guest packages in $(( $(date +%s) - t0 )) s"

# The guest's own configuration.
echo node-prep-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 node-prep-vm\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
: > "$root/etc/machine-id"            # a new one at every first boot of an overlay
cp "$here/guest/node-prep-vm.service" "$root/etc/systemd/system/"
cp "$here/guest/node-prep-vm-boot.sh" "$root/usr/local/sbin/"
chmod 0755 "$root/usr/local/sbin/node-prep-vm-boot.sh"
cp "$here/guest/50-dhcp.network" "$root/etc/systemd/network/"
mkdir -p "$root/etc/cloud"
cp "$here/guest/ds-identify.cfg" "$root/etc/cloud/ds-identify.cfg"
ln -sf /etc/systemd/system/node-prep-vm.service "$root/etc/systemd/system/multi-user.target.wants/node-prep-vm.service"
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# No password for root on the console (the guest has no network beyond the harness's forwards).
sed -i 's/^root:[^:]*:/root::/' "$root/etc/shadow"
if [ -d "$root/etc/ssh/sshd_config.d" ]; then
  printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' > "$root/etc/ssh/sshd_config.d/node-prep-vm.conf"
fi
# Keep the image small: no apt lists or package cache.
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*

mkdir -p "$out"
if [ "$tar_out" = 1 ]; then
  tar --numeric-owner --xattrs --acls -C "$root" -cf "$work/root.tar" .
  mv "$work/root.tar" "$out/"
  echo "${NODE_PREP_VM_KEY:-unkeyed}" > "$out/key"
  echo "build-image: $arch root in $out/root.tar in $(( $(date +%s) - t0 )) s"
  exit 0
fi
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
size_mb=$(( $(du -smx "$root" | cut -f1) + 1536 ))
mkfs.ext4 -q -L root -d "$root" "$work/rootfs.raw" "${size_mb}M"
mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.raw" "$out/"
echo "${NODE_PREP_VM_KEY:-unkeyed}" > "$out/key"
echo "build-image: $arch image in $out (${size_mb} MiB) in $(( $(date +%s) - t0 )) s"
