import type { PolicyFile } from '../schema.js';

/**
 * `minimal` plus a Node.js toolchain: from the prefix of the Node that runs Ward (wherever it is
 * installed) only what Node is made of, its programs (`bin`: node, npm, npx, corepack and global
 * CLIs), its packages (`lib/node_modules`) and its headers (`include/node`, for native addons),
 * never the whole prefix: a Node at ~/bin/node or ~/.local/bin/node has a prefix of ~ or ~/.local,
 * full of the user's files. A prefix that is or contains $HOME is refused when the policy is
 * loaded (its `bin` is the user's own). The global npmrc under each Node (where `npm config set -g`
 * writes tokens) is a mandatory deny. npm's cache lands in the private $HOME and is thrown away
 * with the sandbox.
 */
export const node: PolicyFile = {
  version: 1,
  extends: ['minimal'],
  filesystem: {
    execute: [
      { path: '${NODE_PREFIX}/bin', optional: true },
      { path: '${NODE_PREFIX}/lib/node_modules', optional: true },
      { path: '${NODE_PREFIX}/include/node', optional: true },
      { path: '~/.nvm', optional: true },
      { path: '~/.npm-global', optional: true },
    ],
  },
  env: { pass: ['NODE_ENV'], set: { NPM_CONFIG_UPDATE_NOTIFIER: 'false', NPM_CONFIG_FUND: 'false', NPM_CONFIG_AUDIT: 'false' } },
};
