import type { PolicyFile } from '../schema.js';

/**
 * Used when no policy is given: the workspace (cwd, or --workspace) is readable,
 * writable and executable (an agent builds and runs code there), the system is
 * read-only, $HOME is an empty private tmpfs, there is no network, secret files
 * at the top of the workspace are hidden (the six below, and every `.env.*`,
 * `.envrc` and `.yarnrc.yml` there when the policy is loaded: workspaceSecretFiles),
 * and the limits stop a runaway command without getting in the way of a build.
 */
export const defaultProfile: PolicyFile = {
  version: 1,
  extends: ['minimal', 'node', 'python'],
  filesystem: {
    write: ['${WORKSPACE}'],
    execute: ['${WORKSPACE}'],
    deny: [
      { path: '${WORKSPACE}/.env', optional: true },
      { path: '${WORKSPACE}/.env.local', optional: true },
      { path: '${WORKSPACE}/.env.production', optional: true },
      { path: '${WORKSPACE}/.npmrc', optional: true },
      { path: '${WORKSPACE}/.pypirc', optional: true },
      { path: '${WORKSPACE}/.netrc', optional: true },
    ],
  },
  resources: {
    memory: '4GiB',
    pids: 1024,
    wall_time: '1h',
    file_size: '8GiB',
    open_files: 4096,
  },
  sandbox: { landlock: 'required', allow_degraded: true, home: 'tmpfs' },
};

/**
 * Names at the top of a workspace the default profile hides besides its six fixed entries: dotenv
 * files in any variant (`.env.development`, `.env.production.local`, ...), direnv's `.envrc`, and
 * Yarn's `.yarnrc.yml` (npmAuthToken). A profile is data and cannot name files it has not seen, so
 * the loader lists the workspace and asks this for each name.
 */
export function isWorkspaceSecretName(name: string): boolean {
  return /^\.env(\..+)?$/.test(name) || name === '.envrc' || name === '.yarnrc.yml';
}
