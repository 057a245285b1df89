#!/bin/sh
# The guest half of the VM harness: mount the payload and results shares, run the payload's run.sh
# with the boot count, and power off unless it ends by asking for a reboot (exit code 100).
set -u
mkdir -p /mnt/payload /mnt/results
mount -t 9p -o trans=virtio,version=9p2000.L,ro payload /mnt/payload || { echo "vm: no payload share"; systemctl poweroff; exit 0; }
mount -t 9p -o trans=virtio,version=9p2000.L,rw results /mnt/results || { echo "vm: no results share"; systemctl poweroff; exit 0; }
boots=$(( $(cat /mnt/results/boots 2>/dev/null || echo 0) + 1 ))
echo "$boots" > /mnt/results/boots
echo "vm: boot $boots, up $(cut -d' ' -f1 /proc/uptime) s"
rc=0
if [ -x /mnt/payload/run.sh ]; then
  /mnt/payload/run.sh "$boots" || rc=$?
else
  echo "vm: the payload has no run.sh"
fi
sync
if [ "$rc" -eq 100 ]; then
  echo "vm: the payload asked for a reboot"
  systemctl reboot
else
  echo "vm: payload done (exit $rc), powering off"
  echo "$rc" > /mnt/results/exit-code
  sync
  systemctl poweroff
fi
