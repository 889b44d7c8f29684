/**
 * Turning a path as written in a policy into the absolute path it means.
 * Expansion is deliberately narrow: `~`, and a closed set of `${NAME}`
 * variables. Anything that could make a grant mean more than it says (`..`,
 * globs Ward cannot enforce at the mount layer, relative paths that depend on
 * where Ward happens to be started) is refused with the reason, never guessed.
 */
import path from 'node:path';

export interface ExpandContext {
  home: string;
  workspace: string;
  /** Prefix of the Node.js installation running Ward (e.g. /usr, ~/.nvm/versions/node/v20). */
  nodePrefix: string;
}

export type ExpandResult = { ok: true; path: string } | { ok: false; problem: string; fix: string };

const VARS = ['WORKSPACE', 'HOME', 'NODE_PREFIX'] as const;

export function expandPath(raw: string, ctx: ExpandContext): ExpandResult {
  let p = raw.trim();
  // `~` is put in after the ${...} substitution, so that a home whose name contains "${" is
  // checked below as it is (and refused), never expanded into some other path.
  let tilde = false;
  if (p === '~' || p.startsWith('~/')) {
    if (/[*?[\]{}$\0\n]/.test(ctx.home) || ctx.home.split('/').some((seg) => seg === '.' || seg === '..')) {
      return { ok: false, problem: `"${raw}": ~ stands for the home ${JSON.stringify(ctx.home)}, which contains ".", "..", "$", a glob character or a control character`, fix: 'set HOME to the plain absolute path of your home directory' };
    }
    tilde = true;
    p = p.slice(1);
  } else if (p.startsWith('~')) {
    return { ok: false, problem: `"${raw}": ~user is not supported`, fix: 'write the absolute path of that user\'s home' };
  }
  let unknown: string | undefined;
  p = p.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    switch (name) {
      case 'WORKSPACE':
        return ctx.workspace;
      case 'HOME':
        return ctx.home;
      case 'NODE_PREFIX':
        return ctx.nodePrefix;
      default:
        unknown ??= name;
        return '';
    }
  });
  if (unknown !== undefined) {
    return { ok: false, problem: `"${raw}": unknown variable \${${unknown}}`, fix: `use one of ${VARS.map((v) => `\${${v}}`).join(', ')}, or ~` };
  }
  if (tilde) p = ctx.home + p;
  if (/\$(?!\{)/.test(p) && /\$[A-Za-z_]/.test(p)) {
    return { ok: false, problem: `"${raw}": shell-style $VAR is not expanded`, fix: 'write ${WORKSPACE} or ${HOME} with braces, or the literal path' };
  }
  if (!p.startsWith('/')) {
    return {
      ok: false,
      problem: `"${raw}" is a relative path`,
      fix: `write an absolute path, or "\${WORKSPACE}/${raw.replace(/^\.\//, '')}" for a path in the workspace`,
    };
  }
  // A trailing /** means "this directory and everything below it", which is what a
  // directory grant means anyway; accept it so policies from other tools read naturally.
  if (p.endsWith('/**')) p = p.slice(0, -3) || '/';
  const segments = p.split('/');
  if (segments.some((s) => s === '..' || s === '.')) {
    return { ok: false, problem: `"${raw}" contains "." or ".." segments`, fix: 'write the path it resolves to, without . or ..' };
  }
  if (/[*?[\]{}]/.test(p)) {
    return {
      ok: false,
      problem: `"${raw}": glob patterns other than a trailing /** are not supported yet`,
      fix: 'list the concrete paths (the mount layer needs real paths), or grant their common parent directory',
    };
  }
  if (p.includes('\0') || p.includes('\n')) {
    return { ok: false, problem: `"${JSON.stringify(raw)}" contains a NUL or newline`, fix: 'remove the control character' };
  }
  return { ok: true, path: path.posix.normalize(p).replace(/(.)\/+$/, '$1') };
}

/** True when `child` is `parent` or lies below it (purely lexical; both absolute and normalized). */
export function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(parent + '/');
}
