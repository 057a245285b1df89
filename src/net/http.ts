/**
 * The one HTTP module: every request node-prep makes goes through here. It owns the undici dispatcher
 * (proxy from HTTPS_PROXY/HTTP_PROXY/NO_PROXY as read once at start), the User-Agent, the GitHub token
 * (sent only to the API origin, never across a redirect to another host), timeouts and redaction.
 * Nothing else imports undici.
 *
 * Every read is bounded: a small document (checksum file, signature, API page) in size and in time, a
 * download in time (fetch/download.ts), an error page in size. The idle timeout alone does not end a
 * server that sends one byte a second; the deadline does.
 */
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { interruptSignal } from '../util/interrupt.ts';
import { DeadlineError, DocumentTooLargeError, HttpError, NetworkError, RateLimitError } from '../errors.ts';
import { printable } from '../util/printable.ts';
import { proxyFor } from './proxy.ts';
import { redactSecrets, redactUrl } from './redact.ts';

export interface HttpConfig {
  userAgent: string;
  /** Origin that receives the GitHub token (the API base). */
  apiBase: string;
  githubToken?: string | undefined;
  proxy: { http?: string | undefined; https?: string | undefined; no?: string | undefined };
  connectTimeoutMs: number;
  /** Longest silence allowed while waiting for headers or between body chunks. */
  idleTimeoutMs: number;
  /** Backoff before retry n (0-based); its length is the number of retries. Tests set it to zeros. */
  retryDelaysMs: readonly number[];
  /** Credentials from a --mirror URL's userinfo, sent as Basic auth to that origin only. */
  basicAuth?: { origin: string; header: string } | undefined;
  /** Longest a small document may take, retries included. */
  documentDeadlineMs: number;
  /** Longest one artifact download may take, retries included (--deadline). */
  downloadDeadlineMs: number;
}

export const DEFAULT_HTTP: Omit<HttpConfig, 'userAgent' | 'apiBase' | 'proxy'> = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  retryDelaysMs: [500, 2_000, 5_000],
  documentDeadlineMs: 120_000,
  downloadDeadlineMs: 1_800_000,
};

/** The most node-prep reads of a checksum file or signature: the real ones are a few KiB. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** The most of one releases API page (100 releases with their notes and asset lists, a few MiB). */
export const MAX_API_PAGE_BYTES = 16 * 1024 * 1024;
/** The most of an error answer read for its message. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;

/**
 * An overall deadline: its signal aborts with a DeadlineError (or what `error` builds) as the reason,
 * so whatever was waiting on the server at that moment ends with that error.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly endsAt: number;

  constructor(readonly ms: number, error: () => Error) {
    this.endsAt = Date.now() + ms;
    this.timer = setTimeout(() => this.controller.abort(error()), ms);
    this.timer.unref();
    // A signal (Ctrl-C, a cancelled job) ends whatever waits on the server at once, too.
    if (interruptSignal.aborted) this.controller.abort(interruptSignal.reason);
    else interruptSignal.addEventListener('abort', this.onInterrupt, { once: true });
  }

  private readonly onInterrupt = () => this.controller.abort(interruptSignal.reason);

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expired(): boolean {
    return this.controller.signal.aborted;
  }

  remainingMs(): number {
    return Math.max(0, this.endsAt - Date.now());
  }

  /** Throw the deadline's error when it has passed. */
  check(): void {
    if (this.expired) throw this.controller.signal.reason;
  }

  /** Wait `ms`, or less when the deadline comes first (then throw its error). */
  async sleep(ms: number): Promise<void> {
    await sleep(Math.min(ms, this.remainingMs()));
    this.check();
  }

  clear(): void {
    clearTimeout(this.timer);
    interruptSignal.removeEventListener('abort', this.onInterrupt);
  }
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

const MAX_REDIRECTS = 10;

export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Network errors, 5xx, 408 and 429 (not a rate-limit answer) are worth another try; 4xx are not. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export class Http {
  readonly dispatcher: Dispatcher;
  /** The token goes to URLs under this prefix only (the API base), not to the rest of its host. */
  private readonly apiPrefix: string;

  constructor(readonly config: HttpConfig) {
    const timeouts = {
      connect: { timeout: config.connectTimeoutMs },
      headersTimeout: config.idleTimeoutMs,
      bodyTimeout: config.idleTimeoutMs,
    };
    const { http, https, no } = config.proxy;
    this.dispatcher =
      http || https
        ? new EnvHttpProxyAgent({ ...timeouts, httpProxy: http, httpsProxy: https ?? http, noProxy: no ?? '' })
        : new Agent(timeouts);
    this.apiPrefix = `${new URL(config.apiBase).href.replace(/\/+$/, '')}/`;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private headersFor(url: URL, extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.config.userAgent, ...extra };
    if (this.config.githubToken && url.href.startsWith(this.apiPrefix)) h.authorization = `Bearer ${this.config.githubToken}`;
    else if (this.config.basicAuth && url.origin === this.config.basicAuth.origin) h.authorization = this.config.basicAuth.header;
    return h;
  }

  /**
   * One GET (or HEAD), following redirects by hand so the token is only ever sent to the API origin
   * and every hop is visible. `follow: false` returns the 3xx itself (for /releases/latest).
   */
  async open(
    url: string,
    opts: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; follow?: boolean; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method: opts.method ?? 'GET',
          headers: this.headersFor(current, opts.headers ?? {}),
          dispatcher: this.dispatcher,
          signal: opts.signal,
        });
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        const proxy = proxyFor(current.href, this.config.proxy);
        throw new NetworkError(
          redactUrl(current.href),
          proxy ? `${describeNetworkError(err)} (through the proxy ${redactUrl(proxy)})` : describeNetworkError(err),
          proxy ? `The request went through ${redactUrl(proxy)} from HTTPS_PROXY/HTTP_PROXY: check that proxy, or list the host in NO_PROXY.` : undefined,
          err,
        );
      }
      const location = header(res.headers, 'location');
      if (opts.follow !== false && res.statusCode >= 300 && res.statusCode < 400 && location) {
        await res.body.dump().catch(() => undefined);
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (hop >= MAX_REDIRECTS) throw new HttpError(redactUrl(url), res.statusCode, `${redactUrl(url)}: too many redirects`);
        current = new URL(location, current);
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: current.href };
    }
  }

  /**
   * Run `attempt` with retries under the small-document deadline: whatever is still waiting on the
   * server when it passes ends with a DeadlineError naming `url`.
   */
  async document<T>(url: string, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.config.documentDeadlineMs;
    const deadline = new Deadline(ms, () => new DeadlineError(redactUrl(url), ms, 'document'));
    try {
      return await this.withRetry(() => attempt(deadline.signal), undefined, deadline);
    } finally {
      deadline.clear();
    }
  }

  /**
   * GET a small document, with retries for transient failures; throws on any non-2xx. At most
   * `maxBytes` are read: a longer (or endless) body is refused with DOCUMENT_TOO_LARGE, not retried.
   */
  async getText(
    url: string,
    opts: { headers?: Record<string, string>; maxBytes?: number } = {},
  ): Promise<{ text: string; headers: HttpResponse['headers'] }> {
    const maxBytes = opts.maxBytes ?? MAX_DOCUMENT_BYTES;
    return this.document(url, async (signal) => {
      const res = await this.open(url, { ...(opts.headers ? { headers: opts.headers } : {}), signal });
      if (res.status < 200 || res.status >= 300) {
        const text = await readBody(res.body, MAX_ERROR_BODY_BYTES).then((b) => b.text, () => '');
        throw this.statusError(url, res, text);
      }
      const declared = Number(header(res.headers, 'content-length'));
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new DocumentTooLargeError(redactUrl(url), maxBytes);
      }
      // A body that stalls or breaks is a network error like any other: retried, and it names the URL.
      let body: { text: string; truncated: boolean };
      try {
        body = await readBody(res.body, maxBytes);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw new NetworkError(redactUrl(url), describeNetworkError(err), undefined, err);
      }
      if (body.truncated) throw new DocumentTooLargeError(redactUrl(url), maxBytes);
      return { text: body.text, headers: res.headers };
    });
  }

  async getJson<T>(url: string): Promise<{ data: T; headers: HttpResponse['headers'] }> {
    const { text, headers } = await this.getText(url, {
      headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
      maxBytes: MAX_API_PAGE_BYTES,
    });
    try {
      return { data: JSON.parse(text) as T, headers };
    } catch {
      throw new HttpError(redactUrl(url), 200, `${redactUrl(url)} did not answer with JSON`);
    }
  }

  /**
   * Retry transient failures (network errors, 5xx, 408, 429) with the configured backoff; with a
   * deadline, no retry starts (and no backoff outlasts it) once it has passed.
   */
  async withRetry<T>(attempt: (n: number) => Promise<T>, onRetry?: (n: number, err: unknown) => void, deadline?: Deadline): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(n);
      } catch (err) {
        deadline?.check();
        const retryable = err instanceof NetworkError || (err instanceof HttpError && isRetryableStatus(err.status));
        if (!retryable || n >= this.config.retryDelaysMs.length) throw err;
        onRetry?.(n + 1, err);
        if (deadline) await deadline.sleep(this.config.retryDelaysMs[n]!);
        else await sleep(this.config.retryDelaysMs[n]!);
      }
    }
  }

  /** Turn a non-2xx answer into an error; a GitHub rate-limit answer gets its own error with the reset time. */
  statusError(url: string, res: Pick<HttpResponse, 'status' | 'headers'>, bodyText = ''): Error {
    const remaining = header(res.headers, 'x-ratelimit-remaining');
    if ((res.status === 403 || res.status === 429) && remaining === '0') {
      const reset = Number(header(res.headers, 'x-ratelimit-reset'));
      return new RateLimitError(redactUrl(url), Number.isFinite(reset) && reset > 0 ? new Date(reset * 1000) : undefined, Boolean(this.config.githubToken));
    }
    // A server's error page may echo the request back: keep the token out of the message.
    const detail = bodyText ? `: ${oneLine(redactSecrets(bodyText, [this.config.githubToken]))}` : '';
    const hint =
      res.status === 401 || res.status === 403
        ? 'Check GITHUB_TOKEN (a wrong or expired token is refused) and any proxy in between.'
        : undefined;
    return new HttpError(redactUrl(url), res.status, `GET ${redactUrl(url)} answered ${res.status}${detail}`, hint);
  }
}

/**
 * Read a body up to `maxBytes`: a longer one is cut there (`truncated`) and its connection closed, so
 * an endless body costs at most `maxBytes` of memory.
 */
export async function readBody(body: AsyncIterable<unknown> & { destroy(): unknown }, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size + buf.length > maxBytes) {
      chunks.push(buf.subarray(0, maxBytes - size));
      body.destroy();
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(buf);
    size += buf.length;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

function oneLine(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j.message === 'string') msg = j.message;
  } catch {
    /* not JSON: keep the text */
  }
  const line = printable(msg.replace(/\s+/g, ' ').trim());
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timed out';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'no data within the idle timeout';
    default:
      return e?.cause?.message ?? e?.message ?? String(err);
  }
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
