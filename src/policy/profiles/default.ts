import type { PolicyFile } from '../schema.js';

/**
 * Used when no policy is given: the workspace (cwd, or --workspace) is readable,
 * writable and executable (an agent builds and runs code there), the system is
 * read-only, $HOME is an empty private tmpfs, there is no network, common
 * secret files in the workspace are hidden, and the limits stop a runaway
 * command without getting in the way of a build.
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
