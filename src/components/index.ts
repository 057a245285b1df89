import { cni } from './cni.ts';
import { containerd } from './containerd.ts';
import { crictl } from './crictl.ts';
import { nerdctl } from './nerdctl.ts';
import { runc } from './runc.ts';
import type { Component, ComponentName } from './types.ts';

/** The catalog: one row per component. Adding buildkit is one file and one row. */
export const COMPONENTS: Record<ComponentName, Component> = { containerd, runc, cni, nerdctl, crictl };

/**
 * The built-in default set: the newest versions that carry pinned digests for amd64 and arm64 and are
 * known to work together (containerd 2.3 pins runc 1.4.3 in script/setup/runc-version; crictl 1.36
 * matches Kubernetes 1.36, which recommends containerd 2.3). A test holds every default to its pins.
 */
export const DEFAULT_VERSIONS: Record<ComponentName, string> = {
  containerd: '2.3.4',
  runc: '1.4.3',
  cni: '1.9.1',
  nerdctl: '2.3.0',
  crictl: '1.36.0',
};

export type { Component, ComponentName } from './types.ts';
export { COMPONENT_NAMES } from './types.ts';
