import path from 'node:path';
import type { Destination } from '../components/types.ts';

export function destinationDir(dest: Destination, prefix: string): string {
  return dest.base === 'prefix' ? path.posix.join(prefix, dest.dir) : dest.dir;
}
