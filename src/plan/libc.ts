/**
 * Which containerd build to install: the glibc-linked release asset needs glibc >= 2.35; below that,
 * and on musl, only containerd-static runs. The target's C library is read from its files.
 */
import type { Arch } from '../arch.ts';
import { containerdAssetFlavor, CONTAINERD_DYNAMIC_MIN_GLIBC, readLibc } from '../node/libc.ts';

export async function decideContainerdBuild(flavor: 'auto' | 'dynamic' | 'static', root: string, arch: Arch): Promise<{ static: boolean; reason: string }> {
  if (flavor !== 'auto') return { static: flavor === 'static', reason: `--containerd-flavor ${flavor}` };
  const where = root === '/' ? 'this machine' : 'the image';
  const libc = await readLibc(root, arch);
  switch (libc.kind) {
    case 'glibc': {
      const isStatic = containerdAssetFlavor(libc.version) === 'static';
      return {
        static: isStatic,
        reason: isStatic
          ? `${where} has glibc ${libc.version}, older than the ${CONTAINERD_DYNAMIC_MIN_GLIBC} the glibc-linked build needs`
          : `${where} has glibc ${libc.version}`,
      };
    }
    case 'musl':
      return { static: true, reason: `${where} uses musl, which the glibc-linked build cannot run on` };
    case 'unknown':
      // An image root that is not built yet has no libc to look at: the upstream default build, said plainly.
      return { static: false, reason: `no C library found in ${where} (${libc.detail}); the glibc-linked build is assumed, --containerd-flavor static for musl or old glibc` };
  }
}
