/**
 * The arch install and plan install for. On the live machine: the machine's own; under --root: the
 * image's, from its own ELF binaries (an amd64 containerd in an arm64 image would install cleanly
 * and fail only when the image boots). An --arch that contradicts either is refused as a usage
 * error; under --root, --force-arch overrides what the image says.
 */
import { ARCHES, type Arch } from '../arch.ts';
import { UsageError } from '../errors.ts';
import type { ImageArch } from '../node/elf.ts';

export interface ArchInputs {
  /** --arch, when given. */
  explicit: Arch | undefined;
  force: boolean;
  /** '/' for the live machine. */
  root: string;
  host: Arch;
  /** Under --root: what the image's own binaries say, if it has one node-prep can read. */
  image: ImageArch | undefined;
  /** Under --root: the arch node-prep recorded when it installed there before. */
  recorded: Arch | undefined;
}

export interface TargetArch {
  arch: Arch;
  /** Where it came from, for the plan and the report. */
  reason: string;
  /** Said as a warning: a fallback or an override the user should know about. */
  warning?: string | undefined;
}

export function chooseArch(i: ArchInputs): TargetArch {
  if (i.root === '/') {
    if (i.explicit !== undefined && i.explicit !== i.host) {
      throw new UsageError(
        `--arch ${i.explicit} does not match this ${i.host} machine: its binaries would not run here.`,
        `Drop --arch to install for ${i.host}, or prepare an ${i.explicit} image root with --root DIR --arch ${i.explicit}.`,
      );
    }
    return { arch: i.host, reason: i.explicit ? `--arch ${i.explicit}, this machine's arch` : "this machine's arch" };
  }
  const image = i.image;
  if (image !== undefined) {
    const is = `the image is ${image.arch} (${image.source})`;
    if (i.explicit !== undefined) {
      if (i.explicit === image.installable) return { arch: i.explicit, reason: `--arch ${i.explicit}, the image's arch (${image.source})` };
      if (i.force) return { arch: i.explicit, reason: `--arch ${i.explicit} with --force-arch`, warning: `--force-arch: installing ${i.explicit} binaries although ${is}` };
      throw new UsageError(
        `--arch ${i.explicit} does not match the image root ${i.root}: ${is}.`,
        image.installable
          ? `Drop --arch to install for ${image.installable}, or add --force-arch to install ${i.explicit} anyway.`
          : `node-prep installs for ${ARCHES.join(' and ')} only; add --force-arch to install ${i.explicit} anyway.`,
      );
    }
    if (image.installable === undefined) {
      throw new UsageError(`The image root ${i.root} is ${image.arch} (${image.source}): node-prep installs for ${ARCHES.join(' and ')} only.`, 'Pass --arch amd64 or --arch arm64 with --force-arch to install anyway.');
    }
    return { arch: image.installable, reason: `the image's arch (${image.source})` };
  }
  if (i.explicit !== undefined) return { arch: i.explicit, reason: `--arch ${i.explicit} (the image has no ELF binary that names its arch)` };
  if (i.recorded !== undefined) return { arch: i.recorded, reason: `the arch node-prep installed into the image before (its record; the image has no ELF /bin/sh to read it from)` };
  return {
    arch: i.host,
    reason: "this machine's arch (the image has no ELF binary that names its own)",
    warning: `the image root ${i.root} has no ELF /bin/sh, /bin/busybox or /usr/bin/env to read its arch from: installing for this machine's arch, ${i.host}; pass --arch for another`,
  };
}
