#!/usr/bin/env bash
# The plain shell way node-prep replaces, as an operator's install script does it: for each
# artifact, one after another, curl it, `sha256sum -c` it against pinned digests, unpack it with
# tar (or `install` the bare runc binary); then write the same config files with heredocs.
# No fsync, no staging, no rollback, no record: the baseline the benchmark compares node-prep with.
#
#   MIRROR=http://127.0.0.1:PORT ROOT=/tmp/root CHECKSUMS=checksums.txt \
#   CONTAINERD=2.1.9 RUNC=1.1.5 CNI=1.1.1 NERDCTL=2.3.0 CRICTL=1.36.0 ARCH=amd64 \
#     scripts/bench/shell-install.sh
set -euo pipefail
: "${MIRROR:?}" "${ROOT:?}" "${CHECKSUMS:?}" "${CONTAINERD:?}" "${RUNC:?}" "${CNI:?}" "${NERDCTL:?}" "${CRICTL:?}"
ARCH=${ARCH:-amd64}
CHECKSUMS=$(realpath "$CHECKSUMS")
PREFIX="$ROOT/usr/local"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# fetch URL: download into the work dir and check it against the pinned digest.
fetch() {
  local url=$1 name=${1##*/}
  curl -fsSLO "$url"
  grep -E "^[0-9a-f]{64}  ${name//./\\.}\$" "$CHECKSUMS" | sha256sum -c --quiet -
}

mkdir -p "$PREFIX/bin" "$PREFIX/sbin" "$ROOT/opt/cni/bin"

fetch "$MIRROR/containerd/containerd/releases/download/v$CONTAINERD/containerd-$CONTAINERD-linux-$ARCH.tar.gz"
tar -C "$PREFIX" -xzf "containerd-$CONTAINERD-linux-$ARCH.tar.gz"

fetch "$MIRROR/opencontainers/runc/releases/download/v$RUNC/runc.$ARCH"
install -m 755 "runc.$ARCH" "$PREFIX/sbin/runc"

fetch "$MIRROR/containernetworking/plugins/releases/download/v$CNI/cni-plugins-linux-$ARCH-v$CNI.tgz"
tar -C "$ROOT/opt/cni/bin" -xzf "cni-plugins-linux-$ARCH-v$CNI.tgz"

fetch "$MIRROR/containerd/nerdctl/releases/download/v$NERDCTL/nerdctl-$NERDCTL-linux-$ARCH.tar.gz"
tar -C "$PREFIX/bin" -xzf "nerdctl-$NERDCTL-linux-$ARCH.tar.gz"

fetch "$MIRROR/kubernetes-sigs/cri-tools/releases/download/v$CRICTL/crictl-v$CRICTL-linux-$ARCH.tar.gz"
tar -C "$PREFIX/bin" -xzf "crictl-v$CRICTL-linux-$ARCH.tar.gz"

# The configuration node-prep writes for the same install (containerd 2.x, cgroupfs, --root).
mkdir -p "$ROOT/etc/containerd" "$ROOT/etc/systemd/system/multi-user.target.wants" "$ROOT/etc/nerdctl" \
  "$ROOT/etc/modules-load.d" "$ROOT/etc/sysctl.d"
cat > "$ROOT/etc/containerd/config.toml" <<'EOF'
version = 3
imports = ["/etc/containerd/conf.d/*.toml"]

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10"

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "/etc/containerd/certs.d"

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = "/usr/local/sbin/runc"
  SystemdCgroup = false

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/opt/cni/bin"]
  conf_dir = "/etc/cni/net.d"
EOF
cat > "$ROOT/etc/systemd/system/containerd.service" <<'EOF'
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/containerd.service "$ROOT/etc/systemd/system/multi-user.target.wants/containerd.service"
cat > "$ROOT/etc/crictl.yaml" <<'EOF'
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
EOF
cat > "$ROOT/etc/nerdctl/nerdctl.toml" <<'EOF'
address = "unix:///run/containerd/containerd.sock"
namespace = "k8s.io"
cgroup_manager = "cgroupfs"
cni_path = "/opt/cni/bin"
cni_netconfpath = "/etc/cni/net.d"
EOF
cat > "$ROOT/etc/modules-load.d/containerd.conf" <<'EOF'
overlay
br_netfilter
EOF
cat > "$ROOT/etc/sysctl.d/90-containerd.conf" <<'EOF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
EOF
