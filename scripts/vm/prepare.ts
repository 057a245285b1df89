/**
 * Builds (or finds) the VM tests' guest image and probes the accelerator, ahead of `npm run test:vm`:
 * `.ci/run` starts this in the background while the main suite runs. Node >= 23.6 runs it as is.
 *
 *   node scripts/vm/prepare.ts [amd64|arm64]
 */
import { chooseAccel, ensureImage, type VmArch } from '../../test/vm/harness.ts';

const arch = (process.argv[2] ?? 'amd64') as VmArch;
const t0 = Date.now();
const image = await ensureImage(arch);
const accel = await chooseAccel(image);
process.stdout.write(`vm: the ${arch} guest image is ready in ${image.dir} (${accel}), ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
