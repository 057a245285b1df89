/** Download progress for people: bytes of total, rate and time left, from the fetch events. Pure. */
import type { FetchEvent } from '../events.ts';

interface Track {
  bytes: number;
  total: number | undefined;
  started: number;
  done: boolean;
  note: string;
}

export class ProgressBoard {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly now: () => number = Date.now) {}

  update(e: FetchEvent): void {
    const t = this.tracks.get(e.artifact) ?? { bytes: 0, total: undefined, started: this.now(), done: false, note: '' };
    switch (e.type) {
      case 'download:start':
        t.started = this.now();
        break;
      case 'download:progress':
        t.bytes = e.bytes;
        t.total = e.total;
        break;
      case 'download:retry':
        t.note = `retry ${e.attempt}: ${e.reason}`;
        break;
      case 'download:done':
        t.done = true;
        t.note = e.source === 'cache' ? 'from cache' : 'verified';
        if (e.source === 'network') t.bytes = e.bytes;
        break;
    }
    this.tracks.set(e.artifact, t);
  }

  lines(): string[] {
    const out: string[] = [];
    for (const [name, t] of this.tracks) out.push(`${name}  ${describe(t, this.now())}`);
    return out;
  }
}

function describe(t: Track, now: number): string {
  if (t.done) return t.note;
  const secs = Math.max((now - t.started) / 1000, 0.001);
  const rate = t.bytes / secs;
  const parts = [t.total ? `${mb(t.bytes)} of ${mb(t.total)}` : mb(t.bytes), `${mb(rate)}/s`];
  if (t.total && rate > 0) parts.push(`${Math.ceil((t.total - t.bytes) / rate)}s left`);
  if (t.note) parts.push(t.note);
  return parts.join(', ');
}

export function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} kB`;
}
