/**
 * The one event union the core emits. The core never prints: the CLI renders these for people
 * (task tree or plain lines) and `--json` collects them.
 */
import type { FetchEvent } from './fetch/download.ts';

export type NodePrepEvent =
  | FetchEvent
  | { type: 'verify'; artifact: string; check: string; ok: boolean; detail: string }
  | { type: 'write'; path: string; outcome: string }
  | { type: 'warn'; message: string };

export type Emit = (event: NodePrepEvent) => void;
