/**
 * The one event union the core emits. The core never prints: the CLI renders these for people
 * (task tree or plain lines) and `--json` collects them.
 */

export type NodePrepEvent =
  | FetchEvent
  | { type: 'verify'; artifact: string; check: string; ok: boolean; detail: string }
  | { type: 'write'; path: string; outcome: string }
  | { type: 'warn'; message: string };

export type Emit = (event: NodePrepEvent) => void;

/** Download progress, emitted by fetch and rendered by the progress board. */
export type FetchEvent =
  | { type: 'download:start'; artifact: string; url: string }
  | { type: 'download:progress'; artifact: string; bytes: number; total: number | undefined }
  | { type: 'download:retry'; artifact: string; attempt: number; reason: string; resumeFrom: number }
  | { type: 'download:done'; artifact: string; bytes: number; source: 'cache' | 'network'; path: string };
