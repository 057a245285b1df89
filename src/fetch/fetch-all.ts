import type { Http } from '../net/http.ts';
import type { ArtifactCache } from './cache.ts';
import { fetchVerified, type FetchResult, type FetchTarget } from './download.ts';
import { type FetchEvent } from '../events.ts';

/** GitHub serves each asset from its CDN at a per-connection rate, so parallel downloads add up. */
export const DEFAULT_CONCURRENCY = 6;

/**
 * Fetch every target at once, at most `concurrency` at a time. The first failure stops new
 * downloads from starting, lets the running ones finish or fail, and is what is thrown.
 */
export async function fetchAll(
  http: Http,
  cache: ArtifactCache,
  targets: FetchTarget[],
  opts: {
    concurrency?: number;
    emit?: (e: FetchEvent) => void;
    /** Called as soon as target `index` is verified (or found in the cache), before the others finish. */
    onFetched?: (index: number, result: FetchResult) => void;
  } = {},
): Promise<FetchResult[]> {
  const results: FetchResult[] = new Array(targets.length);
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < targets.length) {
      const i = next++;
      try {
        results[i] = await fetchVerified(http, cache, targets[i]!, opts.emit);
        opts.onFetched?.(i, results[i]!);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, targets.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failure !== undefined) throw failure;
  return results;
}
