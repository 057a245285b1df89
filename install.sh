#!/bin/sh
# Install node-prep's single executable for this machine and run it:
#
#   curl -sfL https://github.com/node-prep/node-prep/releases/download/v0.1.0/install.sh | sudo sh -s -- install --nerdctl 2.2.0
#
# Downloads node-prep-linux-<arch> and SHA256SUMS of one release, checks the executable's sha256
# before anything runs, puts it in /usr/local/bin (atomically), then runs it with the arguments
# given (none: install only). Its messages go to stderr; stdout is node-prep's (--json stays clean).
#
#   NODE_PREP_VERSION      the release (default: the one this script belongs to)
#   NODE_PREP_MIRROR       replaces https://github.com in the download URLs, as for node-prep itself
#   NODE_PREP_INSTALL_DIR  where node-prep goes (default /usr/local/bin)
#   NODE_PREP_NO_INSTALL   1: run it from a temporary folder, removed afterwards, and install nothing
#
# POSIX sh (dash, busybox sh); needs curl or wget, and sha256sum, shasum or openssl.
set -eu

version="${NODE_PREP_VERSION:-0.1.0}"
version="${version#v}"
mirror="${NODE_PREP_MIRROR:-https://github.com}"
mirror="${mirror%/}"
install_dir="${NODE_PREP_INSTALL_DIR:-/usr/local/bin}"

say() { printf 'node-prep install.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$(uname -s)" in
  Linux) ;;
  *) die "node-prep runs on Linux; this is $(uname -s)." ;;
esac
machine="$(uname -m)"
case "$machine" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported architecture $machine: the node-prep executable exists for amd64 (x86_64) and arm64 (aarch64)." ;;
esac
# The executable is the official Node.js build inside: it needs glibc (2.28 or newer), not musl.
for f in /lib/ld-musl-*.so.1; do
  [ -e "$f" ] && [ ! -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e /lib/ld-linux-aarch64.so.1 ] &&
    die "this system uses musl libc ($f); the node-prep executable needs glibc. Use Node.js 22+ and npx node-prep instead."
done

name="node-prep-linux-$arch"
base="$mirror/node-prep/node-prep/releases/download/v$version"

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed: install one of them, or download $base/$name yourself."
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1; }
else
  die "no sha256sum, shasum or openssl to check the download with: install coreutils."
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/node-prep-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $base/SHA256SUMS (is v$version a node-prep release?)."
expected="$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1; exit }' "$tmp/SHA256SUMS")"
case "$expected" in
  "" | *[!0-9a-f]*) die "$base/SHA256SUMS has no sha256 for $name." ;;
esac
[ "${#expected}" -eq 64 ] || die "$base/SHA256SUMS has no sha256 for $name."

run_from() {
  bin="$1"
  shift
  [ "$#" -gt 0 ] || exit 0
  if [ "$bin" = "$tmp/$name" ]; then
    # Not exec: the temporary folder is removed when it ends.
    set +e
    "$bin" "$@"
    code=$?
    exit "$code"
  fi
  rm -rf "$tmp"
  trap - EXIT
  exec "$bin" "$@"
}

target="$install_dir/node-prep"
if [ "${NODE_PREP_NO_INSTALL:-}" != 1 ] && [ -f "$target" ] && [ "$(sha256 "$target")" = "$expected" ]; then
  say "node-prep $version is already in $install_dir."
  run_from "$target" "$@"
fi

fetch "$base/$name" "$tmp/$name" || die "could not download $base/$name."
actual="$(sha256 "$tmp/$name")"
[ "$actual" = "$expected" ] ||
  die "sha256 mismatch for $base/$name: expected $expected (from SHA256SUMS), got $actual. Nothing was installed or run."
chmod 755 "$tmp/$name"

if [ "${NODE_PREP_NO_INSTALL:-}" = 1 ]; then
  say "node-prep $version verified; running it from $tmp."
  run_from "$tmp/$name" "$@"
fi

mkdir -p "$install_dir"
# Beside the target, then renamed over it: a node-prep that is running keeps its file.
if ! { cp "$tmp/$name" "$target.tmp.$$" && chmod 755 "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target"; }; then
  rm -f "$target.tmp.$$"
  die "could not write $target (run as root, or set NODE_PREP_INSTALL_DIR)."
fi
say "installed node-prep $version to $target (sha256 $actual)."
run_from "$target" "$@"
