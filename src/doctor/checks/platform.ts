/**
 * The machine itself: kernel version, architecture, and who is running Ward.
 */
import os from 'node:os';
import type { Check } from '../types.js';

/** `6.18.44-fc-v657` -> [6, 18]; null when it does not parse. */
export function kernelVersion(release: string = os.release()): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const atLeast = (v: [number, number], major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);

export const kernelCheck: Check = {
  id: 'host.kernel',
  title: 'the kernel is new enough for every layer (Linux >= 5.13)',
  severity: 'medium',
  run() {
    const release = os.release();
    const v = kernelVersion(release);
    if (!v) return { status: 'warn', evidence: `cannot parse the kernel release "${release}"`, fix: 'check `uname -r`' };
    const notes: string[] = [];
    if (!atLeast(v, 5, 9)) notes.push('no seccomp descriptor injection (5.9)');
    if (!atLeast(v, 5, 13)) notes.push('no Landlock (5.13)');
    if (!atLeast(v, 6, 7)) notes.push('no Landlock TCP rules (6.7)');
    if (!atLeast(v, 6, 12)) notes.push('no Landlock IPC scoping (6.12)');
    const evidence = `Linux ${release} (${os.machine()})${notes.length ? `: ${notes.join(', ')}` : ''}`;
    if (!atLeast(v, 5, 13)) {
      return {
        status: 'warn',
        evidence,
        fix: 'upgrade to a kernel >= 5.13 (6.12+ has every Landlock feature Ward can use)',
        degrades: 'Landlock, the second filesystem wall (see host.landlock)',
      };
    }
    return { status: 'pass', evidence };
  },
};

export const archCheck: Check = {
  id: 'host.arch',
  title: 'the architecture is one Ward\'s syscall filter knows (x86_64)',
  severity: 'critical',
  run() {
    if (process.arch === 'x64') return { status: 'pass', evidence: `x86_64 (Node ${process.version}, ${process.arch})` };
    return {
      status: 'fail',
      evidence: `${process.arch}: Ward's seccomp filter carries only x86_64 (and i386) syscall numbers and kills every other architecture's calls`,
      fix: 'run Ward on x86_64 until a syscall table for this architecture is added (src/seccomp/arch/)',
      degrades: 'every sandbox: the filter would kill the first syscall',
    };
  },
};

export const rootCheck: Check = {
  id: 'host.root',
  title: 'Ward runs as an unprivileged user',
  severity: 'info',
  run(ctx) {
    if (ctx.uid !== 0) return { status: 'pass', evidence: `uid ${ctx.uid}` };
    return {
      status: 'info',
      evidence: 'running as root (uid 0): every layer works, and bwrap drops all capabilities inside the sandbox',
      fix: 'the recommended deployment is an unprivileged user (with a delegated cgroup): a bug in Ward itself then cannot act as root on the host',
    };
  },
};
