import { describe, expect, it } from 'vitest';
import { explainFailure, relevantLines } from '../../src/smoke/exec.ts';
import { summarizeSmoke } from '../../src/smoke/summary.ts';

describe('explainFailure', () => {
  it.each([
    [{ command: '/r/usr/local/sbin/runc --version', code: 'ENOENT', stderr: '' }, '/r/usr/local/sbin/runc does not exist (ENOENT)'],
    [{ command: '/r/bin/ctr --version', code: 'EACCES', stderr: '' }, '/r/bin/ctr is not executable (EACCES)'],
    [{ command: '/r/sbin/runc --version', exitCode: 127, stderr: '/r/sbin/runc: error while loading shared libraries: libseccomp.so.2: cannot open shared object file: No such file or directory\n' },
      '`/r/sbin/runc --version` exited with code 127: /r/sbin/runc: error while loading shared libraries: libseccomp.so.2: cannot open shared object file: No such file or directory'],
    [{ command: 'ctr run x', exitCode: 1, stderr: 'time="..." level=info msg="hello"\nctr: failed to create shim task: OCI runtime create failed: exec: "runc": executable file not found in $PATH: unknown\n' },
      '`ctr run x` exited with code 1: ctr: failed to create shim task: OCI runtime create failed: exec: "runc": executable file not found in $PATH: unknown'],
    [{ command: 'ctr version', timedOut: true, timeoutMs: 15_000, stderr: '' }, '`ctr version` did not finish within 15 s'],
    [{ command: 'nerdctl ps', signal: 'SIGKILL', stderr: 'a\nb\nc\nd\n' }, '`nerdctl ps` was killed by SIGKILL: b | c | d'],
  ])('%j', (run, text) => {
    expect(explainFailure(run)).toBe(text);
  });

  it('keeps error lines over the rest and cuts long ones', () => {
    expect(relevantLines('info 1\nERROR: x failed\ninfo 2\n')).toEqual(['ERROR: x failed']);
    expect(relevantLines(`${'x'.repeat(400)}\n`)[0]).toHaveLength(300);
  });
});

describe('summarizeSmoke', () => {
  it('prints one line per check with ✓/✗, duration and detail', () => {
    const text = summarizeSmoke({
      kind: 'smoke',
      ok: false,
      mode: 'temporary',
      adaptations: ['SystemdCgroup = true → false ...'],
      checks: [
        { name: 'runc version', ok: true, durationMs: 12.4, detail: 'runc 1.1.5+ds1 at /usr/local/sbin/runc' },
        { name: 'container run', ok: false, durationMs: 1500, detail: 'skipped: runc cannot run' },
      ],
      notRun: [],
    });
    expect(text).toBe([
      'smoke test (temporary containerd): FAILED',
      '  ! SystemdCgroup = true → false ...',
      '  ✓ runc version     12 ms  runc 1.1.5+ds1 at /usr/local/sbin/runc',
      '  ✗ container run    1.5 s  skipped: runc cannot run',
      '',
    ].join('\n'));
  });

  it('under emulation: says which checks could not run, and why, once per reason', () => {
    const text = summarizeSmoke({
      kind: 'smoke',
      ok: true,
      mode: 'temporary',
      adaptations: [],
      checks: [{ name: 'runc version', ok: true, durationMs: 40, detail: 'runc 1.1.5 at /usr/local/sbin/runc' }],
      notRun: [{ name: 'socket', why: 'emulated' }, { name: 'container run', why: 'emulated' }],
      emulatedBy: 'qemu-aarch64 (/usr/bin/qemu-aarch64-static)',
    });
    expect(text).toBe([
      'smoke test (the binaries under qemu-aarch64 (/usr/bin/qemu-aarch64-static)): INCOMPLETE: 2 checks could not run here',
      '  ✓ runc version    40 ms  runc 1.1.5 at /usr/local/sbin/runc',
      '  - not run: socket, container run: emulated',
      '',
    ].join('\n'));
  });
});
