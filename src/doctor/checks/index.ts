/**
 * Every check, in the order the doctor prints them: the host's layers first
 * (what every sandbox is built from), then the evidence's protection, then the
 * calling environment and the policy.
 */
import type { Check } from '../types.js';
import { auditKeyCheck, auditLogCheck } from './audit.js';
import { bwrapCheck, bwrapSetuidCheck } from './bwrap.js';
import { cgroupCheck } from './cgroup.js';
import { envSecretsCheck } from './env.js';
import { landlockCheck, launcherCheck } from './landlock.js';
import { archCheck, kernelCheck, rootCheck } from './platform.js';
import { stateOutsideGrantsCheck, worldWritableGrantsCheck } from './policy.js';
import { seccompCheck, seccompNotifyCheck } from './seccomp.js';
import { usernsCheck } from './userns.js';

export const CHECKS: readonly Check[] = [
  kernelCheck,
  archCheck,
  bwrapCheck,
  bwrapSetuidCheck,
  usernsCheck,
  seccompCheck,
  seccompNotifyCheck,
  launcherCheck,
  landlockCheck,
  cgroupCheck,
  rootCheck,
  auditKeyCheck,
  auditLogCheck,
  envSecretsCheck,
  worldWritableGrantsCheck,
  stateOutsideGrantsCheck,
];
