import { cni } from './cni.ts';
import { containerd } from './containerd.ts';
import { crictl } from './crictl.ts';
import { nerdctl } from './nerdctl.ts';
import { runc } from './runc.ts';
import type { Component } from './types.ts';

/**
 * The catalog: one row per component, in install order. Adding buildkit is one file and one row:
 * the flags, help, defaults, plan, install, smoke version checks and purge follow from it.
 * The defaults are the newest versions that carry pinned digests for amd64 and arm64 and are known
 * to work together (containerd 2.3 pins runc 1.4.3 in script/setup/runc-version; crictl 1.36 matches
 * Kubernetes 1.36, which recommends containerd 2.3). A test holds every default to its pins.
 */
export const COMPONENTS = { containerd, runc, cni, nerdctl, crictl } satisfies Record<string, Component>;

export type ComponentName = keyof typeof COMPONENTS;
export const COMPONENT_NAMES = Object.keys(COMPONENTS) as ComponentName[];

/** The built-in default version of each component (`none`: not installed unless asked). */
export const DEFAULT_VERSIONS = Object.fromEntries(COMPONENT_NAMES.map((n) => [n, COMPONENTS[n].defaultVersion])) as Record<ComponentName, string>;

export type { Component } from './types.ts';
