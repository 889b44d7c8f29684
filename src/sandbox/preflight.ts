/**
 * Finding bubblewrap, and explaining why a sandbox could not be built. The happy
 * path costs nothing here: the diagnosis runs only after bwrap has failed, so
 * its questions are asked of the machine as it is at that moment.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { WardError } from '../errors.js';
import { hostBinaryProblem, SYSTEM_BIN_DIRS, SYSTEM_PATH, systemBinary, type SandboxWritable } from '../hostbin.js';

export const BWRAP_INSTALL_FIX = 'install it: `sudo apt-get install -y bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora); or set WARD_BWRAP to its absolute path';

/**
 * The bwrap binary: $WARD_BWRAP (an absolute path), or the first `bwrap` in the system
 * directories (src/hostbin.ts: never PATH). It runs on the host as the caller, so it is refused
 * when anyone but root or the caller, or (with `writable`) the sandbox about to run, could have
 * changed it or a directory on the way to it.
 */
export function findBwrap(env: NodeJS.ProcessEnv = process.env, writable?: SandboxWritable): string {
  const given = env.WARD_BWRAP;
  const bwrap = given ? given : systemBinary('bwrap');
  if (bwrap === null || existsSync(bwrap) === false) {
    const where = given ? `: WARD_BWRAP=${given} does not exist` : ` in ${SYSTEM_BIN_DIRS.join(', ')} (PATH is not searched: a sandbox can write what it names)`;
    throw new WardError(`bubblewrap (bwrap) is not installed${where}, and Ward builds every sandbox with it`, {
      step: 'preflight:bwrap',
      fix: BWRAP_INSTALL_FIX,
    });
  }
  const problem = hostBinaryProblem(bwrap, writable);
  if (problem !== null) {
    throw new WardError(`refusing to run ${given ? `WARD_BWRAP=${given}` : bwrap} on the host: ${problem}`, {
      step: 'preflight:bwrap',
      fix: given
        ? `point WARD_BWRAP at a bwrap in a directory only root (or you) can write, outside every writable grant of the policy; or unset it to use the system one (${BWRAP_INSTALL_FIX})`
        : `a system bwrap must be root's (or yours) and in directories no one else can write: check ${bwrap} and the directories above it; ${BWRAP_INSTALL_FIX}`,
    });
  }
  return bwrap;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** bwrap's smallest sandbox, to see whether it can be built at all (diagnosis and `ward doctor`). */
export const USERNS_PROBE_ARGS: readonly string[] = ['--unshare-user', '--unshare-net', '--unshare-pid', '--ro-bind', '/', '/', '--', 'true'];

/**
 * bwrap exited before Ward's launcher reported in: find out which layer the
 * kernel refused and say how to get it.
 */
export function diagnoseBwrapFailure(bwrap: string, exitCode: number | null, bwrapStderr?: string): WardError {
  const probe = spawnSync(bwrap, USERNS_PROBE_ARGS, { encoding: 'utf8', timeout: 10_000, env: { PATH: SYSTEM_PATH } });
  const err = `${probe.stderr ?? ''}`.trim();
  const apparmor = read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  const maxUserns = read('/proc/sys/user/max_user_namespaces');
  const clone = read('/proc/sys/kernel/unprivileged_userns_clone');

  if (probe.status !== 0) {
    if (apparmor === '1' || /setting up uid map: Permission denied|RTM_NEWADDR|Operation not permitted/.test(err)) {
      return new WardError(`user namespaces are refused on this host, so bwrap cannot build the sandbox (bwrap said: ${err || 'nothing'})`, {
        step: 'preflight:userns',
        fix:
          apparmor === '1'
            ? 'Ubuntu 24.04+ restricts unprivileged user namespaces through AppArmor. Allow bwrap: create /etc/apparmor.d/bwrap with `abi <abi/4.0>, include <tunables/global> profile bwrap /usr/bin/bwrap flags=(unconfined) { userns, }` and run `sudo systemctl reload apparmor`; or (weaker, host-wide) `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`'
            : 'allow unprivileged user namespaces (`sudo sysctl user.max_user_namespaces=15000`, and on Debian < 11 `sudo sysctl kernel.unprivileged_userns_clone=1`)',
      });
    }
    if (maxUserns === '0' || clone === '0') {
      return new WardError('user namespaces are disabled on this host', {
        step: 'preflight:userns',
        fix: maxUserns === '0' ? '`sudo sysctl user.max_user_namespaces=15000`' : '`sudo sysctl kernel.unprivileged_userns_clone=1`',
      });
    }
    return new WardError(`bwrap cannot create namespaces here: ${err || `exit ${probe.status}`}`, {
      step: 'preflight:namespaces',
      fix: 'run `ward doctor` for a full check; inside a container, run it with --privileged or give it a seccomp profile that allows unshare/clone of namespaces',
    });
  }
  if (read('/proc/sys/kernel/seccomp/actions_avail') === undefined) {
    return new WardError('the kernel has no seccomp filter support, which Ward requires', {
      step: 'preflight:seccomp',
      fix: 'use a kernel built with CONFIG_SECCOMP_FILTER (every mainstream distribution kernel is)',
    });
  }
  const said = bwrapStderr?.trim();
  return new WardError(`bwrap failed (exit ${exitCode}) before the command started: ${said ? said.split('\n').slice(-3).join(' / ') : 'its message is above'}`, {
    step: 'bwrap',
    fix: 'check the paths the policy grants (`ward policy show --plan`); a grant on a special filesystem can make a bind fail',
  });
}
