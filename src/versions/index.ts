/** Where versions come from: GitHub (through the mirror and API bases) or an offline bundle's lock. */
export interface ReleaseIndex {
  /** The tag `latest` means. */
  latestTag(repo: string): Promise<string>;
  /** Published vX.Y.Z releases, newest first. */
  listReleases(repo: string): Promise<import('./release.ts').Release[]>;
}
