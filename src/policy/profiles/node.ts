import type { PolicyFile } from '../schema.js';

/**
 * `minimal` plus a Node.js toolchain: the Node that runs Ward (wherever it is
 * npm's cache lands in the private $HOME and is thrown away with the sandbox.
 */
export const node: PolicyFile = {
  version: 1,
  extends: ['minimal'],
  filesystem: {
    execute: [
      { path: '${NODE_PREFIX}', optional: true },
      { path: '~/.nvm', optional: true },
      { path: '~/.npm-global', optional: true },
    ],
  },
  env: { pass: ['NODE_ENV'], set: { NPM_CONFIG_UPDATE_NOTIFIER: 'false', NPM_CONFIG_FUND: 'false', NPM_CONFIG_AUDIT: 'false' } },
};
