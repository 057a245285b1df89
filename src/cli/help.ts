import type { Command } from '../commands/options.ts';
import { COMPONENT_NAMES, COMPONENTS } from '../components/index.ts';

/** What uninstall --purge removes: each component's runtime state, from the catalog. */
const PURGE_PATHS = COMPONENT_NAMES.flatMap((n) => COMPONENTS[n].purgePaths).join(', ');

/** One line per component of the catalog. */
const VERSIONS = [
  'Component versions (each: 2.2.0, v2.2.0, ^2.2, ~2.1, 2.2.x, latest, or none for the optional ones):',
  ...COMPONENT_NAMES.map((n) => {
    const c = COMPONENTS[n];
    const flag = `  --${c.flag} SPEC`.padEnd(27);
    const def = c.defaultVersion === 'none' ? 'not installed unless asked' : `default ${c.defaultVersion}`;
    return `${flag}${c.help}${c.required ? '' : ', optional'} (${def})`;
  }),
  '  --kubernetes VERSION     the containerd, runc, crictl and pause image for this Kubernetes (1.36,',
  '                           v1.36.2); a component flag wins, one outside the set warns (an error',
  '                           under --verify strict)',
].join('\n');

const FETCH = `Downloads:
  --mirror URL             replaces https://github.com in download URLs   [NODE_PREP_MIRROR]
  --github-api URL         replaces https://api.github.com                [NODE_PREP_GITHUB_API]
  --checksums FILE         extra pinned digests (sha256sum lines), win over built-in pins [NODE_PREP_CHECKSUMS]
  --cache-dir DIR          download cache (default /var/cache/node-prep)  [NODE_PREP_CACHE_DIR]
  --verify default|strict  strict: fail when a published signature cannot be verified, when a
                           digest comes only from the --mirror that serves the download, or when a
                           version is outside the --kubernetes set
  --keyring FILE           trust these OpenPGP keys too
  --timeout SECONDS        give up on a silent connection after this long [NODE_PREP_TIMEOUT]
  --deadline SECONDS       give up on one download after this long, retries included (default 1800;
                           checksum files, signatures, API pages: 120 or this when shorter) [NODE_PREP_DEADLINE]`;

const TARGET = `Target:
  --arch amd64|arm64       target architecture (default: this machine's; under --root the image's,
                           from the ELF header of its /bin/sh). Another than this machine's needs
                           --root; another than the image's needs --force-arch
  --force-arch             under --root: install --arch even though the image's binaries say otherwise
  --root DIR               install into an image root; starts nothing, changes nothing outside DIR
  --prefix DIR             where binaries go (default /usr/local)
  --bundle DIR             use an offline bundle made by \`node-prep download\`, no network`;

const CONFIG = `Configuration:
  --sandbox-image REF      pause image for the CRI plugin (default: the one matching containerd)
  --cgroup-driver D        systemd or cgroupfs (default: systemd when the target boots with systemd)
  --registry-mirror H=URL  registry mirror, written as /etc/containerd/certs.d/H/hosts.toml (repeatable;
                           no credentials in the URL: use --registries)
  --registries FILE        a k3s/RKE2 registries.yaml: mirrors, auth, CA and client certificates, written
                           as certs.d/HOST/hosts.toml (root only where it holds credentials)
  --containerd-proxy URL   the proxy containerd pulls through, written as the unit drop-in
                           /etc/systemd/system/containerd.service.d/http-proxy.conf
  --containerd-no-proxy L  hosts, .domains and CIDRs containerd reaches without it (comma-separated)
  --containerd-proxy-from-env  give containerd this run's HTTPS_PROXY, HTTP_PROXY and NO_PROXY
  --namespace NS           nerdctl's default namespace (default k8s.io, where the kubelet's containers live)
  --containerd-flavor F    auto, dynamic or static (default auto: static where the target's libc is
                           musl or glibc older than 2.35)
  --show-private           show the diff of a config file only its owner may read (hidden by default)`;

const OUTPUT = `Output:
  --json                   one JSON document on stdout, logs on stderr
  --quiet, -q              only errors and the result
  --verbose                more detail, and stack traces on errors
  --yes, -y                do not ask`;

const ENV = `Environment: GITHUB_TOKEN (sent to the GitHub API only), HTTPS_PROXY, HTTP_PROXY, NO_PROXY, CI,
  NODE_PREP_MIRROR, NODE_PREP_GITHUB_API, NODE_PREP_CACHE_DIR, NODE_PREP_CHECKSUMS, NODE_PREP_TIMEOUT,
  NODE_PREP_DEADLINE, NODE_PREP_RETRY_DELAYS (milliseconds between download retries, comma-separated,
  at most 20; default 500,2000,5000)`;

export const MAIN_HELP = `node-prep: turn a Linux machine or an image root into a containerd node

Usage: node-prep <command> [options]

Commands:
  install     resolve, download, verify, install, configure, start, smoke-test
  plan        print what install would do and change nothing (= install --dry-run)
  download    fetch and verify into an offline bundle: --bundle DIR [--arch amd64,arm64]
  smoke       run the smoke test against what is installed
  status      what is installed: versions, files, drift
  uninstall   remove exactly what node-prep installed; restore what it backed up
  versions    the versions that can be installed: versions [COMPONENT]
  doctor      preflight: arch, libc, kernel modules, cgroups, init system, existing runtimes

Example:
  npx node-prep install --nerdctl 2.2.0

${VERSIONS}

${FETCH}

${TARGET}

${CONFIG}

Install:
  --no-start               do not start or restart containerd
  --skip-smoke             do not run the smoke test
  --busybox FILE           a static busybox for the smoke test's container (default: found in the
                           root or on the host)
  --dry-run                print the plan, change nothing

Uninstall:
  --force                  also remove files changed since node-prep wrote them (kept by default)
  --purge                  also remove the runtime's state (${PURGE_PATHS}); asks first
                           on a terminal, needs --yes without one
  --stop-containers        stop containers still running under node-prep's containerd (refused
                           without it)

Status:
  --check                  exit 1 when anything drifted (for monitoring)

${OUTPUT}
  --version, -V            print the version

${ENV}

Exit codes: 0 success, 1 failure, 2 usage error, 3 smoke test not run (or only in part) here.
Run \`node-prep <command> --help\` for one command.
`;

const COMMAND_HELP: Record<Command, string> = {
  install: `Usage: node-prep install [versions] [options]

Resolve versions, download and verify every artifact, install, configure, start containerd and run
the smoke test. A second run with the same inputs changes nothing.

${VERSIONS}

${FETCH}

${TARGET}

${CONFIG}

Install:
  --no-start               do not start or restart containerd
  --skip-smoke             do not run the smoke test
  --busybox FILE           a static busybox for the smoke test's container
  --dry-run                print the plan, change nothing (as \`plan\`, with these flags)

${OUTPUT}`,
  plan: `Usage: node-prep plan [versions] [options]

Print what install would do: resolved versions, every artifact with its URL, expected sha256 and where
that digest comes from, the files install would write, the service decision and the smoke checks.
Changes nothing; exits 1 when install would refuse something (BLOCKED). It takes the flags that
shape the plan; install's dry run prints the same plan for the whole of an install command line.

${VERSIONS}

${FETCH}

${TARGET}

${CONFIG}

${OUTPUT}`,
  download: `Usage: node-prep download --bundle DIR [--arch amd64,arm64] [versions] [options]

Fetch and verify every artifact into DIR with its checksum and signature files and a lock manifest,
for \`install --bundle DIR\` on a machine without network.
  --bundle DIR             where to write the bundle
  --arch LIST              the architectures to fetch, comma-separated (default: this machine's)
  --containerd-flavor F    dynamic or static containerd build (auto means dynamic here: the target
                           machine's libc is not known)

${VERSIONS}

${FETCH}

${OUTPUT}`,
  smoke: `Usage: node-prep smoke [--root DIR] [--busybox FILE]

Run the smoke test against what is installed: versions, socket, effective config, CRI, a container.
Against the running containerd service, or (image roots, no systemd) a temporary containerd started
from the installed files with a temporary root, state and socket.
  --root DIR               the image root to test
  --busybox FILE           a static busybox for the test container (default: found in the root or on
                           the host, else the installed runc, which upstream builds statically)

The container proves it ran in a container: busybox prints that it is PID 1 of its own PID namespace
and a per-run nonce it reads from its rootfs; runc writes its spec into its rootfs (it cannot show
its PID). Binaries of another arch run only under a binfmt_misc handler (qemu-user): then the
binaries and the config are checked, containerd and the container are not.
Exit codes: 0 every check ran and passed, 1 a check failed, 3 some or all checks could not run here.

${OUTPUT}`,
  status: `Usage: node-prep status [--root DIR] [--check]

Show installed versions and files changed, missing or with another mode since node-prep wrote them.
  --root DIR               the image root to look at
  --check                  exit 1 when anything drifted (for monitoring)

${OUTPUT}`,
  uninstall: `Usage: node-prep uninstall [--purge] [--root DIR]

Remove exactly the files node-prep installed and restore the files it backed up.
  --root DIR               the image root to remove from
  --purge                  also remove the runtime's state (${PURGE_PATHS}); asks first
                           on a terminal, needs --yes without one
  --force                  also remove files changed since node-prep wrote them
  --stop-containers        stop the containers still running under node-prep's containerd (their
                           shims), and unmount their rootfs; without it uninstall refuses
  --dry-run                print what would be removed

${OUTPUT}`,
  versions: `Usage: node-prep versions [COMPONENT] [--kubernetes VERSION] [--mirror URL] [--github-api URL]

List the versions that can be installed: the built-in defaults and pinned versions, and the releases
the GitHub API lists. COMPONENT is one of ${COMPONENT_NAMES.join(', ')}.
  --kubernetes VERSION     also the set node-prep picks for this Kubernetes (1.36 or v1.36.2), and
                           the containerd versions RELEASES.md recommends for it
  --mirror URL             replaces https://github.com                    [NODE_PREP_MIRROR]
  --github-api URL         replaces https://api.github.com                [NODE_PREP_GITHUB_API]
  --arch amd64|arm64       which arch's pins to list (default: this machine's)
  --timeout SECONDS        give up on a silent connection after this long [NODE_PREP_TIMEOUT]
  --deadline SECONDS       give up on one download after this long, retries included (default 1800;
                           checksum files, signatures, API pages: 120 or this when shorter) [NODE_PREP_DEADLINE]

${OUTPUT}`,
  doctor: `Usage: node-prep doctor [--root DIR] [--arch amd64|arm64]

Preflight: arch, kernel, libc, cgroups, init system, kernel modules and sysctls, existing runtimes,
free disk. Exits 1 when a blocker is found.
  --root DIR               check an image root (its libc, init and runtimes; the kernel facts are
                           the build host's and do not block)
  --arch amd64|arm64       the architecture the node will run (default: this machine's; under
                           --root the image's, from the ELF header of its /bin/sh)

${OUTPUT}`,
};

export function helpFor(command: Command | undefined): string {
  return command ? `${COMMAND_HELP[command]}\n` : MAIN_HELP;
}
