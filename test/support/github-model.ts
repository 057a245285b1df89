// The release data model of the fake GitHub and how GitHub's REST API shapes
// it (RELEASES.md §6): ordering, "latest" selection, asset digests, Link
// headers. Pure functions, so release-server.ts only has to do HTTP.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import semver from 'semver';

/** Buffer: in-memory bytes. `{path}`: streamed from disk on every request (big benchmark artifacts). */
export type FakeAsset = Buffer | { path: string };

export interface FakeRelease {
  tag: string;
  /** Release title; defaults to the tag. */
  name?: string;
  draft?: boolean;
  prerelease?: boolean;
  /** ISO date; when absent one is synthesised so that higher versions are newer. */
  createdAt?: string;
  assets: Record<string, FakeAsset>;
}

export type ReposMap = Record<string, FakeRelease[]>;

export interface DatedRelease {
  rel: FakeRelease;
  created: string;
}

/** Only these tags can be "latest"; containerd's `api/v*` and `-beta.0` tags must not win. */
export const STABLE_TAG = /^v\d+\.\d+\.\d+$/;

/** Percent-encodes each path segment but keeps the slashes of tags like `api/v1.9.0`. */
export const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');

function versionKey(tag: string): string {
  return semver.valid(semver.clean(tag) ?? '') ?? semver.coerce(tag)?.version ?? '0.0.0';
}

/** Newest first by createdAt, like GitHub's list; missing dates are synthesised from version order. */
export function sortNewestFirst(list: FakeRelease[]): DatedRelease[] {
  const byVersion = [...list].sort((a, b) => semver.compare(versionKey(a.tag), versionKey(b.tag)));
  const base = Date.UTC(2025, 0, 1);
  const dated = list.map((rel, i) => ({
    rel,
    i,
    created: rel.createdAt ?? new Date(base + byVersion.indexOf(rel) * 86_400_000).toISOString().replace('.000Z', 'Z'),
  }));
  dated.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : b.i - a.i));
  return dated.map(({ rel, created }) => ({ rel, created }));
}

/** `forcedTag` models `make_latest`; otherwise the highest stable semver that is neither draft nor prerelease. */
export function pickLatest(list: FakeRelease[], forcedTag?: string): FakeRelease | undefined {
  if (forcedTag !== undefined) return list.find((r) => r.tag === forcedTag && !r.draft);
  return list
    .filter((r) => !r.draft && !r.prerelease && STABLE_TAG.test(r.tag))
    .sort((a, b) => semver.rcompare(a.tag.slice(1), b.tag.slice(1)))[0];
}

export const assetSize = (a: FakeAsset) => (Buffer.isBuffer(a) ? a.length : fs.statSync(a.path).size);

// Shared across server instances: a benchmark's multi-GB file assets are hashed
// once per process (keyed by path, size and mtime), not once per server.
const bufferDigests = new WeakMap<Buffer, string>();
const fileDigests = new Map<string, Promise<string>>();

/** sha256 hex of an asset; file assets are hashed by streaming, never read whole. */
export function assetDigest(asset: FakeAsset): Promise<string> {
  if (Buffer.isBuffer(asset)) {
    let hex = bufferDigests.get(asset);
    if (hex === undefined) bufferDigests.set(asset, (hex = createHash('sha256').update(asset).digest('hex')));
    return Promise.resolve(hex);
  }
  const st = fs.statSync(asset.path);
  const key = `${asset.path}\0${st.size}\0${st.mtimeMs}`;
  let d = fileDigests.get(key);
  if (!d) {
    d = new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      fs.createReadStream(asset.path).on('data', (c) => h.update(c)).on('error', reject).on('end', () => resolve(h.digest('hex')));
    });
    fileDigests.set(key, d);
  }
  return d;
}

export interface JsonContext {
  url: string;
  apiUrl: string;
  id: number;
  /** `null` models assets uploaded before GitHub started recording digests. */
  digest: (a: FakeAsset) => Promise<string | null>;
}

export const downloadUrl = (url: string, repo: string, tag: string, asset: string) =>
  `${url}/${repo}/releases/download/${enc(tag)}/${encodeURIComponent(asset)}`;

/** One release in GitHub's REST shape (the fields clients actually read, plus the usual URLs). */
export async function releaseJson(ctx: JsonContext, repo: string, { rel, created }: DatedRelease) {
  const { url, apiUrl, id } = ctx;
  const base = `${apiUrl}/repos/${repo}/releases`;
  const author = { login: 'release-bot', id: 1, type: 'User' };
  const assets = await Promise.all(
    Object.entries(rel.assets).map(async ([name, a], i) => {
      const digest = await ctx.digest(a);
      return {
        url: `${base}/assets/${id * 1000 + i}`,
        id: id * 1000 + i,
        node_id: `RA_fake${id * 1000 + i}`,
        name,
        label: '',
        uploader: author,
        content_type: /\.(t?gz)$/.test(name) ? 'application/gzip' : 'application/octet-stream',
        state: 'uploaded',
        size: assetSize(a),
        digest: digest === null ? null : `sha256:${digest}`,
        download_count: 0,
        created_at: created,
        updated_at: created,
        browser_download_url: downloadUrl(url, repo, rel.tag, name),
      };
    }),
  );
  return {
    url: `${base}/${id}`,
    assets_url: `${base}/${id}/assets`,
    upload_url: `${base}/${id}/assets{?name,label}`,
    html_url: `${url}/${repo}/releases/tag/${enc(rel.tag)}`,
    id,
    author,
    node_id: `RE_fake${id}`,
    tag_name: rel.tag,
    target_commitish: 'main',
    name: rel.name ?? rel.tag,
    draft: !!rel.draft,
    prerelease: !!rel.prerelease,
    created_at: created,
    published_at: rel.draft ? null : created,
    assets,
    tarball_url: `${apiUrl}/repos/${repo}/tarball/${enc(rel.tag)}`,
    zipball_url: `${apiUrl}/repos/${repo}/zipball/${enc(rel.tag)}`,
    body: '',
  };
}

/** GitHub's Link header: prev, next, last, first as applicable; undefined for a lone first page. */
export function linkHeader(listUrl: string, perPage: number, page: number, lastPage: number): string | undefined {
  const link = (p: number, rel: string) => `<${listUrl}?per_page=${perPage}&page=${p}>; rel="${rel}"`;
  const parts: string[] = [];
  if (page > 1) parts.push(link(Math.min(page - 1, lastPage), 'prev'));
  if (page < lastPage) parts.push(link(page + 1, 'next'), link(lastPage, 'last'));
  if (page > 1) parts.push(link(1, 'first'));
  return parts.length ? parts.join(', ') : undefined;
}
