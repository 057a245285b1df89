/**
 * What the test container must show to prove it ran in a container, not merely that some command
 * printed something: values of this run that only a process inside the container can produce.
 *
 * - busybox: `sh` is the container's init, so `$$` is 1 in its own PID namespace (on the host it is
 *   any other number); and it prints a random nonce it reads from a file written into its rootfs
 *   only, at a folder that does not exist on this host.
 * - runc (no static busybox here): `runc spec --bundle DIR` writes DIR/config.json, where DIR exists
 *   in the rootfs only; the file must then be in the rootfs. This proves the process ran with the
 *   container's rootfs as its `/`, but runc has no way to print its PID: the check says so.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readRegularFile } from '../util/read-regular.ts';
import { hostHas as hostHasPath } from './host.ts';
import { fail, pass, type CheckOutcome } from './types.ts';

export interface ContainerProof {
  kind: 'busybox' | 'runc';
  /** A folder at the rootfs's top, `/node-prep-smoke-<random>`, that does not exist on this host. */
  dir: string;
  /** busybox: the value in `<dir>/nonce` the container must print back. */
  nonce: string;
}

/** The line the busybox command prints; a stand-in that runs it on the host prints another pid and no nonce. */
const PROOF_LINE = /^node-prep-smoke pid=(\S*) nonce=(\S*)$/;

/** The most of runc's config.json that is read back (runc 1.1's default spec is about 2.6 KiB). */
const MAX_SPEC_BYTES = 256 * 1024;

/**
 * A fresh proof folder in `rootfs`, and for busybox the nonce file in it. `hostHas` says whether a
 * path exists on this host (a folder of that name here would let a command run on the host pass).
 */
export async function writeProof(rootfs: string, kind: ContainerProof['kind'], hostHas: (p: string) => Promise<boolean> = hostHasPath): Promise<ContainerProof> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = `/node-prep-smoke-${randomBytes(8).toString('hex')}`;
    if (await hostHas(dir)) continue;
    const nonce = randomBytes(16).toString('hex');
    await mkdir(path.join(rootfs, dir), { mode: 0o755 });
    if (kind === 'busybox') await writeFile(path.join(rootfs, dir, 'nonce'), `${nonce}\n`, { mode: 0o644 });
    return { kind, dir, nonce };
  }
  throw new Error('every random /node-prep-smoke-* name tried exists on this host');
}

/** The command the container runs (absolute paths: with --rootfs there is no image config, hence no PATH). */
export function proofCommand(proof: ContainerProof): string[] {
  if (proof.kind === 'runc') return ['/runc', 'spec', '--bundle', proof.dir];
  // `read` is a shell builtin: no other process, so `$$` is the shell's own pid, the container's init.
  return ['/bin/sh', '-c', `read n < ${proof.dir}/nonce; echo "node-prep-smoke pid=$$ nonce=$n"`];
}

/** What the container printed (stdout), and for runc what it left in `rootfs`, held to the proof. */
export async function judgeProof(proof: ContainerProof, stdout: string, rootfs: string): Promise<CheckOutcome> {
  return proof.kind === 'busybox' ? judgeBusybox(proof, stdout) : judgeRunc(proof, rootfs);
}

function judgeBusybox(proof: ContainerProof, stdout: string): CheckOutcome {
  const out = stdout.trim();
  const line = out.split('\n').map((l) => l.trim()).find((l) => PROOF_LINE.test(l));
  if (line === undefined) {
    return fail(`the test container printed ${JSON.stringify(out.slice(0, 200))}, not the "node-prep-smoke pid=… nonce=…" line its command prints: what ran was not the test container's command`);
  }
  const [, pid = '', nonce = ''] = PROOF_LINE.exec(line)!;
  const problems: string[] = [];
  if (pid !== '1') problems.push(`its shell was process ${pid || '(none)'}, not PID 1 of a PID namespace of its own`);
  if (nonce === '') problems.push(`it could not read ${proof.dir}/nonce, which exists only in the container's rootfs`);
  else if (nonce !== proof.nonce) problems.push(`it printed the nonce ${JSON.stringify(nonce.slice(0, 64))}, not this run's ${proof.nonce}`);
  if (problems.length > 0) return fail(`the test container's output does not prove it ran in a container (${JSON.stringify(line.slice(0, 200))}): ${problems.join('; ')}`);
  return pass(`ran as PID 1 of its own PID namespace and read this run's nonce from ${proof.dir}/nonce in its rootfs (printed ${JSON.stringify(line)})`);
}

async function judgeRunc(proof: ContainerProof, rootfs: string): Promise<CheckOutcome> {
  const where = `${proof.dir}/config.json`;
  const read = await readRegularFile(path.join(rootfs, where), { maxBytes: MAX_SPEC_BYTES });
  if (read.kind !== 'text') {
    return fail(`the test container (\`runc spec --bundle ${proof.dir}\`) exited 0 but left no ${where} in its rootfs (${read.why}): the command did not run in the container's rootfs`);
  }
  let version: unknown;
  try {
    version = (JSON.parse(read.text) as { ociVersion?: unknown }).ociVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string') return fail(`${where} in the test container's rootfs is not the OCI spec \`runc spec\` writes (no ociVersion)`);
  return pass(
    `wrote ${where} (OCI ${version}) inside its rootfs, a path that does not exist on this host; runc cannot show that it ran as PID 1 of its own PID namespace (a static busybox can: install busybox-static or pass --busybox)`,
  );
}
