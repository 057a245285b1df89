/**
 * `node-prep download --bundle DIR`: fetch and verify every artifact for one or more arches into an
 * offline bundle, with the release's checksum and signature files and a lock manifest.
 */
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Arch } from '../arch.ts';
import { verifyArtifactSignatures } from '../apply/signatures.ts';
import { LOCK_FILE, type BundleLock } from '../bundle/lock.ts';
import { describeDigestSource, sameHostWarning } from '../checksums/pins.ts';
import type { Context } from './context.ts';
import type { Emit } from '../events.ts';
import { HttpError, UsageError } from '../errors.ts';
import { fetchAll } from '../fetch/fetch-all.ts';
import { planArtifact, refuseSameHostDigests, toTarget } from '../plan/artifact.ts';
import { forKubernetes, resolveAll } from '../plan/build.ts';
import { outsideTable } from '../versions/kubernetes.ts';
import { refuseOutsideKubernetes } from './plan.ts';
import type { ReleaseSignatureResult } from '../verify/signatures.ts';
import { VERSION } from '../version.ts';

export async function downloadCommand(ctx: Context, emit: Emit): Promise<{ lock: BundleLock; text: string }> {
  const dir = ctx.options.bundle;
  if (!dir) throw new UsageError('`node-prep download` needs --bundle DIR: the folder to write the bundle to.');
  const bundleDir = path.resolve(dir);
  const arches: Arch[] = ctx.options.arches ?? [ctx.arch];
  const k8s = forKubernetes(ctx.options.specs, ctx.options.kubernetes, undefined);
  const resolved = (await resolveAll(k8s.specs, ctx)).filter((r) => r !== undefined);
  if (k8s.set) {
    const outside = outsideTable(k8s.set, Object.fromEntries(resolved.map((r) => [r.component, r.version])));
    if (ctx.options.verify === 'strict') refuseOutsideKubernetes(k8s.set.minor, outside);
    for (const o of outside) emit({ type: 'warn', message: o.message });
  }
  // A bundle is made for other machines: no libc to look at, so `auto` means the dynamic build.
  const asStatic = ctx.options.containerdFlavor === 'static';
  const artifacts = (
    await Promise.all(arches.flatMap((arch) => resolved.map((r) => planArtifact(r, arch, '/usr/local', ctx, r.component === 'containerd' ? { static: asStatic } : {}))))
  ).flat();
  if (ctx.options.verify === 'strict') refuseSameHostDigests(artifacts);
  for (const a of artifacts) {
    if (a.digestSource.kind === 'published' && a.digestSource.sameHost) emit({ type: 'warn', message: sameHostWarning(a.name, a.digestSource.sameHost) });
  }

  const fetched = await fetchAll(ctx.http(), ctx.cache(), artifacts.map(toTarget), { emit });
  // Each checksum and signature file is fetched once: for the signature check, then for the bundle.
  const fetchOnce = memoize(ctx.fetchText);
  // The same check install makes, before anything is written: under --verify strict a bundle whose
  // signatures do not verify is not made.
  const checked = await verifyArtifactSignatures(
    { keyring: ctx.options.keyring, verify: ctx.options.verify, github: ctx.github, fetchText: fetchOnce },
    artifacts.map((a, i) => ({ artifact: a, path: fetched[i]!.path })),
  );
  for (const r of checked.flatMap((c) => c.results)) {
    if (r.result.kind === 'missing') emit({ type: 'warn', message: `${r.result.reason}; the sha256 check stands alone` });
    else if (r.result.kind === 'unverified') emit({ type: 'warn', message: `${r.file}: signature not verified: ${r.result.reason}` });
  }
  await mkdir(bundleDir, { recursive: true });
  const entries: BundleLock['artifacts'] = [];
  for (const [i, a] of artifacts.entries()) {
    const rel = (name: string) => path.posix.join(a.repo, 'releases/download', a.tag, name);
    await placeFile(bundleDir, rel(a.name), { from: fetched[i]!.path });
    const checksumFile = await copyPublished(fetchOnce, bundleDir, rel(a.checksumFile.name), a.checksumFile.url, emit);
    const signatures: string[] = [];
    for (const s of a.signatures) {
      const got = await copyPublished(fetchOnce, bundleDir, rel(s.name), s.url, emit);
      if (got) signatures.push(got);
    }
    entries.push({
      component: a.component,
      version: a.version,
      arch: a.arch,
      name: a.name,
      path: rel(a.name),
      url: a.url,
      sha256: a.sha256,
      digestSource: a.digestSource,
      checksumFile: checksumFile ?? '',
      signatures,
      pinned: a.digestSource.kind === 'pinned',
      signatureResults: checked.find((c) => c.artifact === a.name)?.results ?? [],
    });
  }
  const lock: BundleLock = {
    kind: 'node-prep-bundle',
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    nodePrepVersion: VERSION,
    arches,
    components: Object.fromEntries(
      resolved.map((r) => {
        const a = artifacts.find((x) => x.component === r.component)!;
        return [r.component, { version: r.version, repo: a.repo, tag: a.tag }];
      }),
    ),
    artifacts: entries,
    unpinned: entries.filter((e) => !e.pinned).map((e) => e.name),
  };
  // The lock is written last: a bundle without one is visibly unfinished.
  await placeFile(bundleDir, LOCK_FILE, { data: `${JSON.stringify(lock, null, 2)}\n` });
  const lines = [`Bundle ${bundleDir} (${arches.join(', ')}):`];
  for (const a of entries) {
    lines.push(`  ${a.path}  sha256 ${a.sha256.slice(0, 16)}…  ${describeDigestSource(a.digestSource)}`);
    for (const r of a.signatureResults ?? []) lines.push(`      ${r.file}: ${describeResult(r.result)}`);
  }
  if (lock.unpinned!.length > 0) {
    lines.push(
      `Not pinned: ${lock.unpinned!.join(', ')}. Their digests come from the releases' own checksum files, copied into the bundle:`,
      '  an install from it checks them against the bundle itself. Pass --checksums with pins for them to check them independently.',
    );
  }
  lines.push(`Install it offline with: node-prep install --bundle ${bundleDir}`);
  return { lock, text: `${lines.join('\n')}\n` };
}


function describeResult(result: ReleaseSignatureResult['result']): string {
  switch (result.kind) {
    case 'verified':
      return `verified, signed by ${result.signer} (${result.fingerprint})`;
    case 'unverified':
      return `NOT verified: ${result.reason}`;
    case 'missing':
      return `not checked: ${result.reason}`;
  }
}

/** One fetch per URL: the promise (and a 404) is shared by every caller. */
function memoize(fetchText: (url: string) => Promise<string>): (url: string) => Promise<string> {
  const seen = new Map<string, Promise<string>>();
  return (url) => {
    let p = seen.get(url);
    if (!p) {
      p = fetchText(url);
      seen.set(url, p);
    }
    return p;
  };
}

/** A checksum or signature file of the release, copied into the bundle when the release has it. */
async function copyPublished(fetchText: (url: string) => Promise<string>, dir: string, rel: string, url: string, emit: Emit): Promise<string | undefined> {
  try {
    await placeFile(dir, rel, { data: await fetchText(url) });
    return rel;
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) {
      emit({ type: 'warn', message: `${path.posix.basename(rel)} is not published with the release; the bundle has no copy.` });
      return undefined;
    }
    throw err;
  }
}

async function placeFile(dir: string, rel: string, source: { from: string } | { data: string }): Promise<void> {
  const dest = path.join(dir, rel);
  await mkdir(path.dirname(dest), { recursive: true });
  const temp = `${dest}.partial-${process.pid}`;
  try {
    if ('from' in source) await copyFile(source.from, temp);
    else await writeFile(temp, source.data);
    await rename(temp, dest);
  } finally {
    await rm(temp, { force: true });
  }
}
