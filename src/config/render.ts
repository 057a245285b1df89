import path from 'node:path';
import { UsageError } from '../errors.ts';
import { NODE_PATHS, SOCKET, UNIT_START_TIMEOUT_S } from '../node/paths.ts';
import { COMPONENT_NAMES, COMPONENTS, type ComponentName } from '../components/index.ts';
import { CONFIG_LAYOUTS } from './layout.ts';
import {
  containerdConfigVersion,
  containerdUnitVariant,
  defaultSandboxImage,
  usesCniBinDirs,
} from './containerd-version.ts';
import { hostsContext, hostsFiles, isPrivate } from './hosts.ts';
import { proxyContext, proxyIsPrivate, type ContainerdProxy } from './proxy.ts';
import type { RegistriesSpec } from './registries.ts';
import { fillTemplate, type TemplateContext } from './template.ts';
import { loadTemplate, type TemplateName } from './templates.ts';
import type { CgroupDriver, NodeFile, RegistryMirror } from './types.ts';

export { containerdConfigVersion, defaultSandboxImage } from './containerd-version.ts';
export type { NodeFile } from './types.ts';

export interface NodeConfigInputs {
  containerdVersion: string;
  /** --prefix: containerd in <prefix>/bin, runc in <prefix>/sbin. */
  prefix: string;
  cgroupDriver: CgroupDriver;
  /** --sandbox-image; without it, the pause image of this containerd line. */
  sandboxImage?: string | undefined;
  registryMirrors: RegistryMirror[];
  /** --registries FILE, read and checked; `name` is how messages and comments name it. */
  registries?: { spec: RegistriesSpec; name: string } | undefined;
  /** containerd's proxy environment, as a unit drop-in. */
  containerdProxy?: ContainerdProxy | undefined;
  /** nerdctl's default namespace (k8s.io: see what the kubelet runs). */
  namespace: string;
  /** The components installed: each one's config files (its catalog entry's configFiles) are rendered. */
  components: readonly ComponentName[];
}

/** containerd's default socket; crictl and nerdctl are pointed at it explicitly. */
export const CONTAINERD_ADDRESS = `unix://${SOCKET}`;
const MODE = 0o644;
/** A file with registry credentials, a client key's path or proxy credentials: root only. */
const PRIVATE_MODE = 0o600;

/**
 * Every file node-prep writes to a node except binaries. Pure: same inputs, byte-identical files —
 * a second install compares digests to decide it has nothing to do.
 */
export async function renderNodeFiles(inputs: NodeConfigInputs): Promise<NodeFile[]> {
  checkInputs(inputs);
  const file = (nodePath: string, component: string, what: string, content: string): NodeFile => ({ nodePath, content, mode: MODE, component, what });
  const files: NodeFile[] = [];
  for (const name of COMPONENT_NAMES.filter((n) => inputs.components.includes(n))) {
    for (const nodePath of COMPONENTS[name].configFiles) {
      const renderer = RENDERERS[nodePath];
      if (!renderer) throw new Error(`${name}'s catalog entry names ${nodePath}, but nothing renders it (src/config/render.ts RENDERERS)`);
      const { what, content } = await renderer(inputs);
      files.push(file(nodePath, name, what, content));
    }
    // Registry hosts and the proxy are containerd's: its hosts dir and a drop-in of its unit.
    if (name === 'containerd') files.push(...(await containerdExtras(inputs)));
  }
  files.push(file(NODE_PATHS.modulesLoad, 'node', 'kernel modules: overlay, br_netfilter', await render('node/modules-load.conf', {})));
  files.push(file(NODE_PATHS.sysctl, 'node', 'sysctls: ip_forward, bridge-nf-call-iptables/ip6tables', await render('node/sysctl.conf', {})));
  return files;
}

/**
 * The hosts.toml files and the proxy drop-in. One holding a secret is root-only and carries `shown`,
 * its text with REDACTED in place of the secret, for every output.
 */
async function containerdExtras(inputs: NodeConfigInputs): Promise<NodeFile[]> {
  const out: NodeFile[] = [];
  for (const hosts of hostsFiles(inputs.registryMirrors, inputs.registries?.spec, inputs.registries?.name)) {
    const secret = isPrivate(hosts);
    const what = hosts.mirrors.length > 0 ? `registry mirrors for ${hosts.host}` : `registry settings for ${hosts.host}`;
    out.push({
      nodePath: `${NODE_PATHS.certsDir}/${hosts.host}/hosts.toml`,
      component: 'containerd',
      what: secret ? `${what} (credentials or a client key: root only)` : what,
      content: await render('containerd/hosts.toml', hostsContext(hosts, false)),
      mode: secret ? PRIVATE_MODE : MODE,
      ...(secret ? { shown: await render('containerd/hosts.toml', hostsContext(hosts, true)) } : {}),
    });
  }
  const proxy = inputs.containerdProxy;
  if (proxy && (proxy.http !== undefined || proxy.https !== undefined || proxy.no !== undefined)) {
    const secret = proxyIsPrivate(proxy);
    out.push({
      nodePath: NODE_PATHS.containerdProxyDropIn,
      component: 'containerd',
      what: `containerd's proxy environment${secret ? ' (proxy credentials: root only)' : ''}`,
      content: await render('containerd/http-proxy.conf', proxyContext(proxy, false)),
      mode: secret ? PRIVATE_MODE : MODE,
      ...(secret ? { shown: await render('containerd/http-proxy.conf', proxyContext(proxy, true)) } : {}),
    });
  }
  return out;
}

const render = async (name: TemplateName, context: TemplateContext) => fillTemplate(await loadTemplate(name), context, name);

/** Each config file a catalog entry may name, by node path: what it is for and its content. */
const RENDERERS: Record<string, (inputs: NodeConfigInputs) => Promise<{ what: string; content: string }>> = {
  [NODE_PATHS.containerdConfig]: async (inputs) => ({
    what: 'containerd config (CRI plugin enabled)',
    content: await render(CONFIG_LAYOUTS[containerdConfigVersion(inputs.containerdVersion)].template!, containerdContext(inputs)),
  }),
  [NODE_PATHS.containerdUnit]: async (inputs) => ({
    what: 'containerd systemd unit',
    content: await render('containerd/containerd.service', { ...containerdUnitVariant(inputs.containerdVersion), execStart: path.posix.join(inputs.prefix, 'bin/containerd'), startTimeoutSec: `${UNIT_START_TIMEOUT_S}s` }),
  }),
  [NODE_PATHS.crictlConfig]: async () => ({
    what: 'crictl runtime endpoint',
    content: await render('crictl/crictl.yaml', { endpoint: CONTAINERD_ADDRESS, timeoutSeconds: 10 }),
  }),
  [NODE_PATHS.nerdctlConfig]: async (inputs) => ({
    what: 'nerdctl address, namespace and CNI paths',
    content: await render('nerdctl/nerdctl.toml', {
      address: CONTAINERD_ADDRESS,
      namespace: inputs.namespace,
      cgroupDriver: inputs.cgroupDriver,
      cniBinDir: NODE_PATHS.cniBinDir,
      cniConfDir: NODE_PATHS.cniConfDir,
    }),
  }),
};

function containerdContext(inputs: NodeConfigInputs): TemplateContext {
  const binDirs = usesCniBinDirs(inputs.containerdVersion);
  return {
    dropIns: `${NODE_PATHS.containerdDropIns}/*.toml`,
    imports: `${NODE_PATHS.containerdDropIns}/*.toml`,
    sandboxImage: inputs.sandboxImage ?? defaultSandboxImage(inputs.containerdVersion),
    runcPath: path.posix.join(inputs.prefix, 'sbin/runc'),
    systemdCgroup: inputs.cgroupDriver === 'systemd',
    cniBinDir: NODE_PATHS.cniBinDir,
    cniBinDirList: binDirs,
    cniBinDirSingle: !binDirs,
    cniConfDir: NODE_PATHS.cniConfDir,
    certsDir: NODE_PATHS.certsDir,
    grpcAddress: SOCKET,
  };
}

/**
 * The CLI checks flags too; these checks guard what lands in files: the prefix goes unquoted into
 * ExecStart (where systemd would expand `%` and `$` and split on spaces), the namespace follows
 * containerd's rule (https://github.com/containerd/containerd/blob/main/pkg/namespaces/validate.go).
 */
function checkInputs(inputs: NodeConfigInputs): void {
  if (!/^\/[\w.+@/-]*$/.test(inputs.prefix) || inputs.prefix.split('/').includes('..')) {
    throw new UsageError(`--prefix ${JSON.stringify(inputs.prefix)}: use an absolute path of letters, digits and . _ - + @ only.`);
  }
  if (inputs.sandboxImage !== undefined && !/^[^\s\p{Cc}]+$/u.test(inputs.sandboxImage)) {
    throw new UsageError(`--sandbox-image ${JSON.stringify(inputs.sandboxImage)}: give an image reference, e.g. registry.k8s.io/pause:3.10.`);
  }
  if (!/^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/.test(inputs.namespace) || inputs.namespace.length > 76) {
    throw new UsageError(`--namespace ${JSON.stringify(inputs.namespace)}: containerd namespaces are letters and digits joined by . _ -.`);
  }
}
