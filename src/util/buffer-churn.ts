/**
 * Peak memory. Every network read, file read and gunzip output is a fresh Buffer; V8 frees them only
 * when its young generation fills or when external memory grew by 64 MiB since the last collection,
 * so a fast download or extraction keeps up to ~64 MiB of already-consumed buffers resident. The byte
 * loops report what they moved; after every 4 MiB a scavenge (about a millisecond) returns them.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const EVERY = 4 * 1024 * 1024;
type Gc = (options: { type: 'minor' }) => void;
let gc: Gc | null | undefined;
let moved = 0;

export function bytesMoved(n: number): void {
  moved += n;
  if (moved < EVERY) return;
  moved = 0;
  if (gc === undefined) {
    try {
      // --expose-gc set at run time puts gc() into contexts created afterwards.
      v8.setFlagsFromString('--expose-gc');
      gc = (vm.runInNewContext('gc') as Gc | undefined) ?? null;
    } catch {
      gc = null;
    }
  }
  gc?.({ type: 'minor' });
}
