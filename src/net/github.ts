/**
 * GitHub release lookups: the `/releases/latest` redirect (no API call, no rate limit) and the releases
 * API with Link pagination. URLs are built from the mirror and API bases so a local mirror works.
 */
import semver from 'semver';
import { HttpError, NetworkError, NodePrepError } from '../errors.ts';
import { header, type Http } from './http.ts';
import { isSafeName, printable } from '../util/printable.ts';
import { redactUrl } from './redact.ts';
import { versionOfTag, type Release } from '../versions/release.ts';

interface ApiRelease {
  tag_name: string;
  draft: boolean;
  prerelease: boolean;
  assets?: Array<{ name: string; digest?: string | null }>;
}

/** The URL of the `rel="next"` page in a GitHub `Link` header, if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?([^";]+)"?/.exec(part.trim());
    if (m && m[2] === 'next') return m[1];
  }
  return undefined;
}

export class GitHub {
  constructor(
    private readonly http: Http,
    /** Replaces https://github.com (the --mirror). */
    readonly downloadBase: string,
    /** Replaces https://api.github.com (--github-api). */
    readonly apiBase: string,
  ) {}

  downloadUrl(repo: string, tag: string, asset: string): string {
    return `${trimSlash(this.downloadBase)}/${repo}/releases/download/${encodeURIComponent(tag)}/${encodeURIComponent(asset)}`;
  }

  /** The tag `/releases/latest` redirects to, read from the Location header without following it. */
  async latestTag(repo: string): Promise<string> {
    const url = `${trimSlash(this.downloadBase)}/${repo}/releases/latest`;
    return this.http.document(url, async (signal) => {
      const res = await this.http.open(url, { follow: false, signal });
      await res.body.dump().catch(() => undefined);
      const location = header(res.headers, 'location');
      if (res.status >= 300 && res.status < 400 && location) {
        const tag = decodeTag(new URL(location, url).pathname.split('/').filter(Boolean).pop() ?? '');
        if (tag && !isSafeName(tag)) {
          // `%0A`, an escape sequence or a `/` in a tag is never a release: say so without printing it raw.
          throw new NodePrepError('BAD_TAG', `${redactUrl(url)} points to the tag ${JSON.stringify(printable(tag))}, which holds a control character or a path separator.`, {
            hint: 'The server is not a faithful GitHub mirror: check --mirror, or give an exact version.',
            fields: { url: redactUrl(url), tag: printable(tag) },
          });
        }
        if (tag) return tag;
      }
      if (res.status >= 300 && res.status < 400) throw this.http.statusError(url, res, 'redirect without a release tag');
      // A plain file server (a mirror, a bundle served over HTTP) has no /releases/latest to redirect.
      throw new HttpError(
        redactUrl(url),
        res.status,
        `${redactUrl(url)} answered ${res.status}, not a redirect to the latest release`,
        'A plain file-server mirror cannot answer `latest`: give an exact version, or a range with --github-api pointing at an API.',
      );
    });
  }

  /** Every published release (no drafts, no pre-releases, no non-version tags), newest first. */
  async listReleases(repo: string): Promise<Release[]> {
    try {
      return await this.listAll(repo);
    } catch (err) {
      if (err instanceof NetworkError) {
        throw new NetworkError(String(err.fields.url), String(err.fields.reason), 'Ranges need the GitHub API: check the network or --github-api URL, or give exact versions, which need no API call.', err);
      }
      throw err;
    }
  }

  private async listAll(repo: string): Promise<Release[]> {
    const out: Release[] = [];
    let url: string | undefined = `${trimSlash(this.apiBase)}/repos/${repo}/releases?per_page=100`;
    for (let page = 0; url && page < 50; page++) {
      const { data, headers }: { data: ApiRelease[]; headers: Record<string, string | string[] | undefined> } =
        await this.http.getJson<ApiRelease[]>(url);
      for (const r of Array.isArray(data) ? data : []) {
        // A page is a server's word: an entry that is not a release object is not one.
        if (typeof r !== 'object' || r === null || typeof r.tag_name !== 'string') continue;
        const version = versionOfTag(r.tag_name);
        if (!version || r.draft || r.prerelease) continue;
        out.push({
          tag: r.tag_name,
          version,
          // An asset name with a control character or a path separator is no asset node-prep knows.
          assets: (Array.isArray(r.assets) ? r.assets : []).filter((a) => typeof a?.name === 'string' && isSafeName(a.name)).map((a) => ({ name: a.name, sha256: parseApiDigest(a.digest) })),
        });
      }
      url = nextLink(header(headers, 'link'));
    }
    return out.sort((a, b) => semver.rcompare(a.version, b.version));
  }
}

function parseApiDigest(digest: string | null | undefined): string | undefined {
  const m = /^sha256:([0-9a-f]{64})$/i.exec(digest ?? '');
  return m ? m[1]!.toLowerCase() : undefined;
}

/** A percent-encoded path segment; a malformed escape is kept as it is (and then refused as a tag). */
function decodeTag(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function trimSlash(s: string): string {
  return s.replace(/\/+$/, '');
}
