#!/usr/bin/env bash
# Reproduce docs/demo/progress-capture.txt: `node-prep install` on a real terminal (a detached tmux
# pane), showing the live task tree with per-download progress, captured several times while it runs.
#
#   bash scripts/demo/tmux-capture.sh [OUTPUT]        (default OUTPUT: docs/demo/progress-capture.txt)
#
# Needs tmux, Node >= 22.6 and the Debian fixtures (.cache/debian-release; made here when missing,
# which needs Debian's package mirror). Serves them on 127.0.0.1 through the test release server with
# a per-connection throttle (NP_DEMO_BPS bytes/s, default 6000000) so the downloads take a few seconds.
# Installs into a temporary image root (--root): nothing on this machine outside /tmp is touched.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$repo/docs/demo/progress-capture.txt}
bps=${NP_DEMO_BPS:-6000000}
interval=${NP_DEMO_INTERVAL:-0.8}
cols=120
rows=64

command -v tmux >/dev/null || { echo "tmux is not installed (apt-get install tmux)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=6)?0:1)' \
  || { echo "Node >= 22.6 is needed to run scripts/demo/release-server.ts; this is $(node --version)" >&2; exit 1; }
# Node 22.6 to 23.5 strip types only with the flag; newer ones do it by default.
strip=()
[ "$(node -p 'process.features.typescript || ""')" = "" ] && strip=(--experimental-strip-types)

cd "$repo"
[ -f .cache/debian-release/manifest.json ] || node scripts/fixtures/debian-release.mjs
node scripts/build.mjs >/dev/null

work=$(mktemp -d /tmp/np-demo.XXXXXX)
sock=np-demo-$$
server_pid=
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

node "${strip[@]}" scripts/demo/release-server.ts --bytes-per-second "$bps" --port-file "$work/server.json" >/dev/null &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.json" ] && break; sleep 0.1; done
[ -s "$work/server.json" ] || { echo "the release server did not start" >&2; exit 1; }
field() { node -e "const s=JSON.parse(require('fs').readFileSync('$work/server.json','utf8')); console.log($1)"; }
url=$(field s.url)
api=$(field s.apiUrl)
sums=$(field s.checksums)
versions=$(field "['--containerd',s.versions.containerd.at(-1),'--runc',s.versions.runc,'--cni',s.versions.cni,'--nerdctl',s.versions.nerdctl,'--crictl',s.versions.crictl].join(' ')")

# What the pane shows: a prompt line, the command, then node-prep's own output on a real TTY.
# Server addresses become $MIRROR, the temp dir /tmp/image and the fixtures' checksums file checksums.txt, so the capture reads well.
cmd="node bin/node-prep.js install --root $work/root --no-start --skip-smoke --mirror $url --github-api $api --checksums $sums $versions"
shown="node-prep install --root /tmp/image --no-start --skip-smoke --mirror \$MIRROR --checksums checksums.txt $versions"
inner="printf '%s\n' '\$ $shown'; env -u CI NO_PROXY=127.0.0.1,localhost $cmd; echo \"[exit code \$?]\"; sleep 3600"

tmux -L "$sock" -f /dev/null new-session -d -s demo -x "$cols" -y "$rows" -c "$repo" "bash -c $(printf '%q' "$inner")"

frames=()
last=
start=$(date +%s.%N)
for _ in $(seq 200); do
  sleep "$interval"
  screen=$(tmux -L "$sock" capture-pane -p -J -t demo | sed -e "s#$work/root#/tmp/image#g" -e "s#$url#\$MIRROR#g" -e "s#$sums#checksums.txt#g" -e 's/[[:space:]]*$//')
  if [ "$screen" != "$last" ]; then
    t=$(node -e "console.log(($(date +%s.%N) - $start).toFixed(1))")
    frames+=("--- ${t}s ---"$'\n'"$screen")
    last=$screen
  fi
  grep -q '^\[exit code' <<<"$screen" && break
done

mkdir -p "$(dirname "$out")"
{
  echo "# node-prep install on a terminal: the task tree with live download progress."
  echo "# Made by scripts/demo/tmux-capture.sh: a tmux pane (${cols}x${rows}) captured every ${interval}s while"
  echo "# node-prep installed Debian-built containerd, runc and CNI plugins (nerdctl and crictl are"
  echo "# stand-ins) from a local mirror throttled to $bps bytes/s per connection. Each frame is"
  echo "# the whole screen at that moment (wrapped lines joined); a frame equal to the one before is left out."
  for f in "${frames[@]}"; do
    echo
    printf '%s\n' "$f" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
  done
} >"$out"
echo "wrote ${#frames[@]} frames to $out"
grep -q '^\[exit code 0\]' <<<"$last" || { echo "node-prep did not exit 0:" >&2; printf '%s\n' "$last" >&2; exit 1; }
