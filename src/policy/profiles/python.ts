import type { PolicyFile } from '../schema.js';

/**
 * `minimal` plus Python: the system interpreter lives under /usr already; this
 * adds the usual user-level installs (pyenv, ~/.local) read-only and keeps
 * Python from writing .pyc files next to read-only sources.
 */
export const python: PolicyFile = {
  version: 1,
  extends: ['minimal'],
  filesystem: {
    execute: [
      { path: '~/.pyenv', optional: true },
      { path: '~/.local/bin', optional: true },
      { path: '~/.local/lib', optional: true },
    ],
  },
  env: { pass: ['PYENV_VERSION', 'VIRTUAL_ENV'], set: { PYTHONDONTWRITEBYTECODE: '1' } },
};
