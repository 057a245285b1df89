import path from 'node:path';
import { UsageError } from '../errors.ts';
import { NODE_PATHS } from '../node/paths.ts';
import { CONFIG_LAYOUTS } from './layout.ts';
import {
  containerdConfigVersion,
  containerdUnitVariant,
  defaultSandboxImage,
  usesCniBinDirs,
} from './containerd-version.ts';
import { hostsFiles } from './hosts.ts';
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
  /** nerdctl's default namespace (k8s.io: see what the kubelet runs). */
  namespace: string;
  withCrictl: boolean;
  withNerdctl: boolean;
}

/** containerd's default socket; crictl and nerdctl are pointed at it explicitly. */
export const CONTAINERD_ADDRESS = 'unix:///run/containerd/containerd.sock';
const MODE = 0o644;

/**
 * Every file node-prep writes to a node except binaries. Pure: same inputs, byte-identical files —
 * a second install compares digests to decide it has nothing to do.
 */
export async function renderNodeFiles(inputs: NodeConfigInputs): Promise<NodeFile[]> {
  checkInputs(inputs);
  const render = async (name: TemplateName, context: TemplateContext) => fillTemplate(await loadTemplate(name), context, name);
  const file = (nodePath: string, component: NodeFile['component'], what: string, content: string): NodeFile => ({
    nodePath,
    content,
    mode: MODE,
    component,
    what,
  });
  const v = inputs.containerdVersion;
  const unit = containerdUnitVariant(v);
  const files: NodeFile[] = [
    file(NODE_PATHS.containerdConfig, 'containerd', 'containerd config (CRI plugin enabled)',
      await render(CONFIG_LAYOUTS[containerdConfigVersion(v)].template!, containerdContext(inputs))),
    file(NODE_PATHS.containerdUnit, 'containerd', 'containerd systemd unit',
      await render('containerd/containerd.service', { ...unit, execStart: path.posix.join(inputs.prefix, 'bin/containerd') })),
  ];
  for (const hosts of hostsFiles(inputs.registryMirrors)) {
    files.push(file(`${NODE_PATHS.certsDir}/${hosts.host}/hosts.toml`, 'containerd', `registry mirror for ${hosts.host}`,
      await render('containerd/hosts.toml', hosts)));
  }
  if (inputs.withCrictl) {
    files.push(file(NODE_PATHS.crictlConfig, 'crictl', 'crictl runtime endpoint',
      await render('crictl/crictl.yaml', { endpoint: CONTAINERD_ADDRESS, timeoutSeconds: 10 })));
  }
  if (inputs.withNerdctl) {
    files.push(file(NODE_PATHS.nerdctlConfig, 'nerdctl', 'nerdctl address, namespace and CNI paths',
      await render('nerdctl/nerdctl.toml', {
        address: CONTAINERD_ADDRESS,
        namespace: inputs.namespace,
        cgroupDriver: inputs.cgroupDriver,
        cniBinDir: NODE_PATHS.cniBinDir,
        cniConfDir: NODE_PATHS.cniConfDir,
      })));
  }
  files.push(file(NODE_PATHS.modulesLoad, 'node', 'kernel modules: overlay, br_netfilter', await render('node/modules-load.conf', {})));
  files.push(file(NODE_PATHS.sysctl, 'node', 'sysctls: ip_forward, bridge-nf-call-iptables/ip6tables', await render('node/sysctl.conf', {})));
  return files;
}

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
