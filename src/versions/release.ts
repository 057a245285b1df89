/** What a release is to node-prep: its tag, the version it names, and its assets. */

export interface ReleaseAsset {
  name: string;
  /** sha256 hex from the API's `digest` field (`sha256:<hex>`), when GitHub computed one. */
  sha256?: string | undefined;
}

export interface Release {
  tag: string;
  version: string;
  assets: ReleaseAsset[];
}

/** Release tags node-prep installs: `vX.Y.Z` only (containerd's `api/v*` tags and pre-releases are not). */
const RELEASE_TAG = /^v(\d+\.\d+\.\d+)$/;

export function versionOfTag(tag: string): string | undefined {
  return RELEASE_TAG.exec(tag)?.[1];
}
