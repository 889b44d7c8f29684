/**
 * The mount plan: what the sandbox's filesystem looks like, computed from the
 * effective policy and the host as it is right now.
 *
 * The sandbox's root is an empty tmpfs (bubblewrap's default), so everything
 * not bound in is invisible: default deny is the starting point, not a list of
 * things to hide. Then, in order from the root down:
 *   - each granted path is bound at its real path (read-only, or read-write for
 *     `write`); grants are additive, so a path already covered by a parent bind
 *     with the same or more rights is not bound again;
 *   - symlinks on the way to a granted path are recreated, so `/lib64/ld-linux`
 *     resolves inside as it does outside;
 *   - each denied path that a bind would expose is masked: a directory by an
 *     empty, mode-0000, read-only tmpfs, a file by an empty mode-0000 file. Deny
 *     is checked on real paths, so a symlink or a second grant naming the same
 *     place cannot get around it, and a grant that lies inside a denied path is
 *     dropped (deny wins).
 * The same computation yields the Landlock rules, so the two layers agree by
 * construction and the second one still holds if the first has a bug.
 */
import { readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import { PolicyError, WardError } from '../errors.js';
import { lstatOrNull, realOr } from '../paths.js';
import { isWithin } from '../policy/expand.js';
import type { EffectivePolicy, FsEntry, Origin } from '../policy/load.js';
import type { FsKey } from '../policy/schema.js';
import { aliasesOf, readMountTable, type MountTable } from './aliases.js';
import { boundSockets, planSockets, SOCKET_WALK, type SocketPlan } from './sockets.js';

/** Rights a bind or a Landlock rule carries: r read, w write, x execute, d device ioctl. */
export type Rights = string;

export type MountOp =
  | { kind: 'proc'; dest: '/proc' }
  | { kind: 'dev'; dest: '/dev' }
  | { kind: 'tmpfs'; dest: string; why: string }
  | { kind: 'bind'; src: string; dest: string; writable: boolean }
  | { kind: 'mask-dir'; dest: string }
  | { kind: 'mask-file'; dest: string }
  | { kind: 'symlink'; target: string; dest: string };

export interface LandlockRule {
  path: string;
  rights: Rights;
}

export interface MountPlan {
  ops: MountOp[];
  landlock: LandlockRule[];
  /** Directory the command starts in (inside the sandbox). */
  cwd: string;
  /** Things the plan did that a user should know about (degrades to stricter, skips). */
  notes: string[];
}

export interface MountContext {
  home: string;
  origins: Map<string, Origin>;
  /**
   * Places no writable grant may be or contain, each with what it is (for the error): the
   * caller's home (its ~/.bashrc, ~/.profile and systemd user units run outside the sandbox)
   * and Ward's own directories, which compile.ts creates before planning.
   */
  guarded: Guarded[];
  /** Where unix sockets live on this host (sockets.ts socketAreas): granted trees there are walked to the end. */
  socketAreas: string[];
}

/** A place no writable grant may be or contain; `what` names it and `why` says what writing there would do. */
export interface Guarded {
  path: string;
  what: string;
  why: string;
  /** Added to the fix, e.g. how to move the place itself. */
  fix?: string;
}

interface Grant {
  literal: string;
  real: string;
  rights: Set<string>;
  isDir: boolean;
  /**
   * filesystem.append: bound writable (for the supervisor) and always bound on its own, even
   * inside another bind, so the kernel refuses to unlink, rename or replace it (EBUSY: a mount
   * point) or to hard-link it elsewhere (EXDEV), whoever asks.
   */
  append?: boolean;
  /** The first write or append entry that made it writable, for errors. */
  writer?: { key: FsKey; path: string };
}

const RIGHTS_OF: Record<Exclude<FsKey, 'deny' | 'visible'>, string> = {
  read: 'r',
  write: 'rw',
  execute: 'rx',
  // Landlock cannot say "append only": the sandbox itself gets read only, and every write
  // open goes to the supervisor (a policy with append entries always runs supervised, see
  // plan/rules.ts), which opens with O_APPEND and injects the fd. The bind is writable so that
  // the supervisor's open (from the sandbox's root) can write at all (see `append` below).
  append: 'r',
};

export function planMounts(eff: EffectivePolicy, ctx: MountContext): MountPlan {
  const notes: string[] = [];
  const grants = new Map<string, Grant>();
  // The host's mount table, read once per plan: for kernel filesystems mounted outside /proc,
  // /dev and /sys, and for second mounts that show a denied or guarded place under another name.
  let tableRead: MountTable | undefined;
  const table = () => (tableRead ??= readMountTable());
  const kmounts = () => kernelMounts(table());

  const entries: { key: Exclude<FsKey, 'deny' | 'visible'>; entry: FsEntry; real: string; stat: Stats }[] = [];
  for (const key of ['read', 'write', 'execute', 'append'] as const) {
    for (const entry of eff.filesystem[key]) {
      const resolved = resolve(entry, key, ctx);
      if (!resolved) continue;
      if (skipKernelTree(entry, key, resolved.real, eff.workspace, ctx, notes, kmounts)) continue;
      entries.push({ key, entry, ...resolved });
    }
  }
  const writableReals = entries.filter((e) => e.key === 'write' || e.key === 'append').map((e) => ({ real: e.real, literal: e.entry.path }));
  for (const { key, entry, real } of entries) refuseLinkInWritable(entry, key, real, writableReals, ctx);

  for (const { key, entry, real, stat } of entries) {
    let g = grants.get(real);
    if (!g) grants.set(real, (g = { literal: entry.path, real, rights: new Set(), isDir: stat.isDirectory() }));
    for (const c of RIGHTS_OF[key]) g.rights.add(c);
    if ((key === 'write' || key === 'append') && !g.writer) g.writer = { key, path: entry.path };
    if (key === 'append') {
      g.append = true;
      notes.push(`append-only ${entry.path}: the run is supervised, and only O_APPEND writes are given (no truncate, rename, unlink, link)`);
    }
  }

  // Denied places, on both the name written and the real path it resolves to. Visible-only
  // places are collected apart: they are bound read-only (stat shows the real file) with no
  // Landlock rule of their own, and the supervisor refuses every open and exec of them.
  // `via`: a deny of Ward's or a profile's reached through a symlink inside a writable grant
  // (planted or the user's own, e.g. `.env -> .env.development`): masked where it points now,
  // which holds for this run only, since the command can re-aim the link (see below).
  const denied: { path: string; isDir: boolean; nlink: number; via?: { entry: string; link: { target: string; dest: string }; around: string } }[] = [];
  const visible: { path: string; isDir: boolean }[] = [];
  const listed = [...eff.filesystem.deny.map((e) => ['deny', e] as const), ...eff.filesystem.visible.map((e) => ['visible', e] as const)];
  for (const [key, entry] of listed) {
    const st = lstatOrNull(entry.path);
    let real: string | undefined;
    try {
      real = st ? realpathSync(entry.path) : undefined;
    } catch {
      real = undefined; // a dangling symlink
    }
    const rst = real ? lstatOrNull(real) : null;
    if (!real || !rst) {
      missingDenyOrVisible(key, entry, st !== null, grants, ctx, notes);
      continue;
    }
    const o = ctx.origins.get(`${key}\0${entry.path}`);
    const wards = key === 'deny' && (o === undefined || o.file === 'ward:mandatory-deny' || o.file.startsWith('profile:'));
    const via = wards ? linkInWritable(entry.path, real, writableReals, true) : refuseLinkInWritable(entry, key, real, writableReals, ctx);
    if (key === 'visible') {
      // Visible-only places are bound too (read-only), so they must stay out of the kernel's trees as grants do.
      if (skipKernelTree(entry, 'visible', real, eff.workspace, ctx, notes, kmounts)) continue;
      visible.push({ path: real, isDir: rst.isDirectory() });
      notes.push(`visible-only ${entry.path}: the run is supervised; stat and listing show it, every open and exec of it is refused`);
    } else denied.push({ path: real, isDir: rst.isDirectory(), nlink: rst.nlink, ...(via ? { via: { entry: entry.path, link: via.link, around: via.around.literal } } : {}) });
  }
  linkedOutOfDenied(denied, [...grants.keys()], notes);
  // Deny wins over visible too: a visible path inside a denied one stays hidden.
  const shown = visible.filter((v) => !denied.some((d) => isWithin(v.path, d.path)));

  maskAliases(denied, shown, [...grants.keys()], table(), notes);

  // Deny wins: drop every grant at or below a denied (or visible-only) path.
  for (const [real, g] of grants) {
    const d = [...denied, ...shown].find((x) => isWithin(real, x.path));
    if (d) {
      grants.delete(real);
      notes.push(`grant ${g.literal} is inside denied ${d.path} and was dropped (deny wins)`);
    }
  }

  for (const g of grants.values()) refuseWritableOverGuarded(g, eff.workspace, ctx, table());

  const ops: MountOp[] = [{ kind: 'proc', dest: '/proc' }, { kind: 'dev', dest: '/dev' }];
  const binds: { dest: string; writable: boolean }[] = [];
  const sorted = [...grants.values()].sort((a, b) => depth(a.real) - depth(b.real) || cmp(a.real, b.real));
  for (const g of sorted) {
    const writable = g.rights.has('w') || g.append === true;
    const parent = nearest(binds, g.real);
    if (parent && !g.append && (parent.writable || !writable)) continue; // covered by a bind with the same or more rights
    binds.push({ dest: g.real, writable });
    ops.push({ kind: 'bind', src: g.real, dest: g.real, writable });
  }

  // Visible-only: its own read-only bind, wherever it is (inside a grant or not), so the
  // sandbox sees the real metadata and can change nothing (EROFS), rename or unlink nothing
  // (EBUSY) and link it nowhere (EXDEV).
  for (const v of shown) ops.push({ kind: 'bind', src: v.path, dest: v.path, writable: false });

  // Private, empty, writable places every program expects, unless a grant already covers them.
  const tmpfs: [string, string][] = [['/tmp', 'private /tmp']];
  if (eff.sandbox.home === 'tmpfs' && ctx.home !== '/') tmpfs.push([ctx.home, 'private empty $HOME']);
  const privateDirs: string[] = [];
  for (const [dest, why] of tmpfs) {
    if (nearest(binds, dest)) continue;
    if (denied.some((d) => isWithin(dest, d.path))) continue;
    ops.push({ kind: 'tmpfs', dest, why });
    privateDirs.push(dest);
  }

  // Unix sockets a bind would expose are masked like denied files (sockets.ts says why).
  const bound = boundSockets();
  // A socket not at its bound name is searched for where a user's servers keep theirs: the
  // workspace, and the policy's own grants in the caller's home (the home's part of one that
  // holds it) or owned by the caller outside the system's trees (SYSTEM_TREES); not in those, nor
  // in what only a built-in profile grants: a search of /usr (over 100,000 entries) would refuse
  // every launch while one such socket listens anywhere on the host.
  const homeReal = realOr(ctx.home);
  const uid = process.getuid?.() ?? -1;
  const searched = entries
    .filter(({ key, entry, real }) => grants.has(real) && (entry.path === eff.workspace || !ctx.origins.get(`${key}\0${entry.path}`)?.file.startsWith('profile:')))
    .flatMap(({ entry, real }) => {
      if (entry.path === eff.workspace || (homeReal !== '/' && isWithin(real, homeReal))) return [real];
      if (lstatOrNull(real)?.uid === uid && !SYSTEM_TREES.some((t) => isWithin(real, t) || isWithin(t, real))) return [real];
      return homeReal !== '/' && isWithin(homeReal, real) ? [homeReal] : [];
    });
  const socks = planSockets({
    searched: [...new Set([...searched, ...shown.map((v) => v.path)])],
    roots: [...binds.map((b) => b.dest), ...shown.map((v) => v.path)],
    hidden: denied.map((d) => d.path),
    granted: new Set(grants.keys()),
    areas: ctx.socketAreas,
    bound: bound.sockets,
    table,
  });
  if (socks.incomplete) refuseUnwalkable(socks.incomplete, grants, ctx);
  if (socks.lost) refuseLostSockets(socks.lost, grants, ctx);
  if (bound.why !== undefined && socks.stale?.length) {
    notes.push(`the kernel could not say where unix sockets' nodes are (sock_diag: ${bound.why}), so Ward looked for them by the names they were bound by; the directories of ${socks.stale.map((n) => JSON.stringify(n)).join(', ')} are gone, and a socket moved out of one into a granted tree is not masked`);
  }
  for (const s of socks.masks) denied.push({ path: s, isDir: false, nlink: 1 });
  for (const s of socks.granted) notes.push(`${grants.get(s)?.literal ?? s} is a unix socket granted by name: the command can connect to it, and whatever serves it acts outside the sandbox with its own rights`);

  // Masks, only where a bind would expose the denied place.
  const bindDests = new Set(ops.filter((o) => o.kind === 'bind').map((o) => o.dest));
  for (const d of denied) {
    const b = nearest(binds, d.path);
    if (!b) continue;
    ops.push({ kind: d.isDir ? 'mask-dir' : 'mask-file', dest: d.path });
    // Refusing these would let any command stop every later run of the default profile with one
    // `ln -s` (and refuse the common `.env -> .env.development`), so the target is masked and the
    // user told; a deny of the real path by an entry with no such link makes it hold across runs.
    if (d.via && !denied.some((x) => !x.via && isWithin(d.path, x.path))) {
      notes.push(
        `denied ${d.via.entry} goes through the symlink ${d.via.link.dest} -> ${d.via.link.target} inside the writable grant ${d.via.around}: ${d.path} is masked in this run only, since the command can re-aim the link and a later run would mask whatever it points at then; if ${d.path} holds secrets, deny it by its real path (filesystem.deny: ["${d.path}"])`,
      );
    }
    if (!d.isDir && d.nlink > 1) {
      notes.push(`denied ${d.path} has ${d.nlink} hard links: other names of the same file inside a grant stay readable`);
    }
    // A mask is a mount on the denied path, so that path cannot be renamed (EBUSY), but a
    // directory above it inside a writable bind could be, taking the secret out from under its
    // mask: the next run would find nothing at the denied path and the secret at the new name.
    // Every directory between the bind and the mask is bound onto itself, so each is a mount
    // point too and renaming or removing it fails with EBUSY.
    if (!b.writable) continue;
    for (let a = path.dirname(d.path); a !== b.dest && isWithin(a, b.dest); a = path.dirname(a)) {
      if (bindDests.has(a) || denied.some((x) => isWithin(a, x.path))) continue;
      bindDests.add(a);
      ops.push({ kind: 'bind', src: a, dest: a, writable: true });
    }
  }

  // Symlinks on the way to each granted path, so the names in the policy work inside.
  const made = new Set<string>();
  for (const g of sorted) {
    if (!grants.has(g.real) || g.literal === g.real) continue;
    for (const link of symlinkChain(g.literal)) {
      // Inside a bind the host's own link is already there; inside /proc or /dev the sandbox's own apply.
      if (made.has(link.dest) || nearest(binds, link.dest) || SPECIAL.some((d) => isWithin(link.dest, d))) continue;
      made.add(link.dest);
      ops.push({ kind: 'symlink', target: link.target, dest: link.dest });
    }
  }

  ops.sort((a, b) => (a.kind === 'proc' || a.kind === 'dev' ? -1 : 0) - (b.kind === 'proc' || b.kind === 'dev' ? -1 : 0) || depth(a.dest) - depth(b.dest) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || cmp(a.dest, b.dest));

  const landlock: LandlockRule[] = [
    { path: '/dev', rights: 'rwd' },
    { path: '/proc', rights: 'r' },
    ...privateDirs.map((p) => ({ path: p, rights: 'rw' })),
    ...sorted.filter((g) => grants.has(g.real)).map((g) => ({ path: g.real, rights: [...'rwx'].filter((c) => g.rights.has(c)).join('') })),
  ];

  const ws = eff.workspace;
  const cwd = nearest(binds, ws) ? ws : privateDirs.includes(ctx.home) ? ctx.home : '/';
  if (cwd !== ws) notes.push(`the workspace ${ws} is not granted, so the command starts in ${cwd}`);
  return { ops, landlock, cwd, notes };
}

/** How far linkedOutOfDenied looks inside each denied directory (the entries bound the cost; depth only stops a loop of bind mounts). */
const DENIED_LINKS = { entries: 1000, depth: 8 };

/**
 * Adds to `denied` the real targets of the symlinks inside each denied directory that lead out of
 * it into a grant. A dotfile manager (GNU stow, chezmoi's symlink mode) makes ~/.ssh/id_rsa a
 * link to ~/dotfiles/ssh/.ssh/id_rsa: the mask hides the link, but the key itself would stay
 * readable at its real path under a grant of ~. A target that is or holds a grant (or the denied
 * directory) is not a secret file of the directory but a link to some place the policy names: it
 * is left, with a note. A file there with more than one hard link is noted: its other names are
 * the same file, which no mask on this one covers, and finding them would take a walk of every
 * grant. Bounded (DENIED_LINKS): a denied directory is not walked to the end, and a note says where it stopped.
 */
function linkedOutOfDenied(denied: { path: string; isDir: boolean; nlink: number }[], granted: string[], notes: string[]): void {
  const dirs = denied.filter((d) => d.isDir);
  for (const d of dirs) {
    const queue: [string, number][] = [[d.path, 0]];
    let seen = 0;
    let deeper: string | undefined;
    for (let i = 0; i < queue.length && seen < DENIED_LINKS.entries; i++) {
      const [dir, level] = queue[i]!;
      let names;
      try {
        names = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of names.slice(0, DENIED_LINKS.entries - seen)) {
        seen++;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (level + 1 < DENIED_LINKS.depth) queue.push([p, level + 1]);
          else deeper ??= p;
        }
        if (e.isFile()) {
          const links = lstatOrNull(p)?.nlink ?? 1;
          if (links > 1) notes.push(`denied ${p} has ${links} hard links: other names of the same file inside a grant stay readable`);
        }
        if (!e.isSymbolicLink()) continue;
        let real: string;
        try {
          real = realpathSync(p);
        } catch {
          continue; // dangling: nothing to hide
        }
        if (isWithin(real, d.path) || denied.some((x) => isWithin(real, x.path)) || !granted.some((g) => isWithin(real, g))) continue;
        if (isWithin(d.path, real) || granted.some((g) => isWithin(g, real))) {
          notes.push(`denied ${d.path} holds the symlink ${p} -> ${real}, which is or holds a granted place: it stays as the policy grants it`);
          continue;
        }
        const st = lstatOrNull(real);
        if (!st) continue;
        denied.push({ path: real, isDir: st.isDirectory(), nlink: st.nlink });
        notes.push(`denied ${real} too: the symlink ${p} inside denied ${d.path} leads there`);
      }
    }
    if (seen >= DENIED_LINKS.entries) notes.push(`denied ${d.path}: only its first ${DENIED_LINKS.entries} entries were checked for symlinks leading out of it and for hard links`);
    if (deeper !== undefined) notes.push(`denied ${d.path}: directories more than ${DENIED_LINKS.depth} levels down (${deeper}) were not checked for symlinks leading out of it or for hard links`);
  }
}

/**
 * Adds to `denied` each other name (aliases.ts) under which a grant would show a denied or
 * visible-only place: a bind mount or second mount of its filesystem inside a grant, or one that
 * holds a grant (which the deny-wins step then drops). Masked there as the original is; a
 * visible-only place's other name is masked whole, since only its own bind is read-only.
 */
function maskAliases(denied: { path: string; isDir: boolean; nlink: number }[], shown: { path: string; isDir: boolean }[], granted: string[], table: MountTable, notes: string[]): void {
  const places = [...denied.map((d) => ({ path: d.path, isDir: d.isDir, what: 'denied' })), ...shown.map((v) => ({ path: v.path, isDir: v.isDir, what: 'visible-only' }))];
  for (const place of places) {
    for (const a of aliasesOf(place.path, table)) {
      if (!granted.some((g) => isWithin(a, g) || isWithin(g, a)) || denied.some((x) => isWithin(a, x.path))) continue;
      // nlink 1: the hard-link note belongs to the original name only.
      denied.push({ path: a, isDir: place.isDir, nlink: 1 });
      notes.push(`${place.what} ${place.path} is also at ${a} (another mount of the same filesystem, such as a bind mount): masked there too`);
    }
  }
}

/**
 * A deny or visible path that is not there when the sandbox starts. Ward masks what exists (a
 * mount needs something to cover), so inside a writable grant the sandbox could create it and
 * use it freely: as for grants, a missing path is an error unless the entry says `optional`,
 * and an optional one that a writable grant would let the command create is noted.
 */
function missingDenyOrVisible(key: 'deny' | 'visible', entry: FsEntry, dangling: boolean, grants: Map<string, Grant>, ctx: MountContext, notes: string[]): void {
  const o = ctx.origins.get(`${key}\0${entry.path}`);
  const own = ctx.guarded.find((g) => g.path === entry.path);
  if (key === 'deny' && own && !entry.optional) {
    // compile.ts made it before planning: gone now means something removed it meanwhile (those
    // in the account's home, when HOME is elsewhere, are not made and their denies are optional).
    throw new WardError(`${own.what} ${entry.path} ${dangling ? 'is a dangling symlink' : 'does not exist'} while the plan is made, so its mandatory deny could mask nothing`, {
      step: 'preflight',
      fix: `create it (\`mkdir -p -m 700 ${entry.path}\`) and run again; if something else removes it, find out what`,
    });
  }
  if (!entry.optional) {
    throw new PolicyError(
      o?.file ?? '(policy)',
      o?.keyPath ?? `filesystem.${key}`,
      `${entry.path} ${dangling ? 'is a symlink to a path that does not exist' : 'does not exist'}: Ward can only hide what is there when the sandbox starts, so a command that may write there could create it and read it back`,
      `create it (e.g. an empty file or directory), remove the entry, or mark it optional if it may be missing: { path: "${entry.path}", optional: true }`,
    );
  }
  // Ward's mandatory denies and the built-in profiles' are optional by design (most workspaces and
  // hosts lack most of them, docs/policy.md says what that means); a note for each on every run
  // would bury the notes about what the user wrote.
  if (key !== 'deny' || o === undefined || o.file === 'ward:mandatory-deny' || o.file.startsWith('profile:')) return;
  const writable = [...grants.values()].find((g) => g.rights.has('w') && (isWithin(entry.path, g.real) || isWithin(entry.path, g.literal)));
  if (writable) notes.push(`denied ${entry.path} does not exist now: if the command creates it (inside writable ${writable.literal}), nothing hides it`);
}

/**
 * A grant whose path goes through a symlink that lies inside a writable grant of the same
 * policy: a sandboxed command could have made that link in an earlier run, to point this grant,
 * and so a later run's bind, at any host path (e.g. a profile's optional ~/.pyenv made a link to
 * a secret directory). Refused, optional entries too (SECURITY-MODEL.md says why), unless the
 * link resolves inside the writable grant it lies in: the command can reach that already.
 *
 * A restriction (deny, visible, append) through such a link is refused wherever the link points:
 * there the danger is the place it points at now, which the command can leave unrestricted in a
 * later run by re-aiming the link, inside the grant as well as out of it.
 */
function refuseLinkInWritable(entry: FsEntry, key: FsKey, real: string, writable: { real: string; literal: string }[], ctx: MountContext): undefined {
  const restricts = key === 'deny' || key === 'visible' || key === 'append';
  const found = linkInWritable(entry.path, real, writable, restricts);
  if (!found) return undefined;
  const { link, around } = found;
  const o = ctx.origins.get(`${key}\0${entry.path}`);
  if (restricts) {
    const left = { deny: 'unmasked', visible: 'readable', append: 'writable in full' }[key];
    throw new PolicyError(
      o?.file ?? '(policy)',
      o?.keyPath ?? `filesystem.${key}`,
      `${entry.path} goes through the symlink ${link.dest} -> ${link.target}, which lies inside the writable grant ${around.literal}: a sandboxed command can re-aim that link, so a later run would apply filesystem.${key} to whatever it points at then and leave ${real} ${left}`,
      `name the real path instead: filesystem.${key}: ["${real}"]; if you did not make the link, remove it (\`rm ${link.dest}\`) and check what else changed in ${around.literal}`,
    );
  }
  throw new PolicyError(
    o?.file ?? '(policy)',
    o?.keyPath ?? `filesystem.${key}`,
    `${entry.path} goes through the symlink ${link.dest} -> ${link.target}, which lies inside the writable grant ${around.literal}: a sandboxed command could have made that link, to point this grant at any host path (here ${real})`,
    `if you did not make the link, remove it (\`rm ${link.dest}\`) and check what else changed in ${around.literal}; if you did, grant the target by its real path (${real}) instead of ${entry.path}`,
  );
}

/**
 * The first symlink on the way from `p` to its real path `real` that lies inside a writable
 * grant (`writable`, by real path), with the grant; undefined when there is none. Such a link
 * may have been made, and can be re-aimed, by a sandboxed command. With `anyTarget` false (a
 * grant), a link is let through when `real` lies inside that grant: the command reaches it
 * already. A restriction or a rule pattern passes `anyTarget`: there no link is harmless.
 */
export function linkInWritable(
  p: string,
  real: string,
  writable: readonly { real: string; literal: string }[],
  anyTarget = false,
): { link: { target: string; dest: string }; around: { real: string; literal: string } } | undefined {
  if (p === real || writable.length === 0) return undefined; // no symlink on the way
  for (const link of symlinkChain(p)) {
    const at = realParentJoin(link.dest);
    const around = writable.filter((w) => isWithin(at, w.real));
    if (around.length === 0 || (!anyTarget && around.some((w) => isWithin(real, w.real)))) continue;
    return { link, around: around[0]! };
  }
  return undefined;
}

/** `p` with its parent directory resolved (the link itself is kept). */
function realParentJoin(p: string): string {
  try {
    return path.join(realpathSync(path.dirname(p)), path.basename(p));
  } catch {
    return p;
  }
}

/**
 * A granted tree in a socket area (/run, /tmp, $XDG_RUNTIME_DIR...) too large or deep to walk
 * whole: a socket Ward did not see would stay reachable, so the plan is refused.
 */
function refuseUnwalkable(at: NonNullable<SocketPlan['incomplete']>, grants: Map<string, Grant>, ctx: MountContext): never {
  const literal = grants.get(at.root)?.literal ?? at.root;
  const key = (['read', 'write', 'execute', 'append', 'visible'] as const).find((k) => ctx.origins.has(`${k}\0${literal}`));
  const o = key ? ctx.origins.get(`${key}\0${literal}`) : undefined;
  const where = at.part === at.root ? literal : `${literal}'s ${at.part}`;
  throw new PolicyError(
    o?.file ?? '(policy)',
    o?.keyPath ?? `filesystem.${key ?? 'read'}`,
    `${where} is a place where unix sockets live, and it holds ${at.stopped}: Ward masks every socket in a granted tree there (connect(2) ignores a read-only bind, so a socket would reach its server outside the sandbox), and it stops looking after ${SOCKET_WALK.entries} entries or ${SOCKET_WALK.depth} levels`,
    `grant only the subdirectories or files the command needs instead of ${literal}`,
  );
}

/**
 * Sockets not at the names they were bound by (renamed, linked elsewhere, bound by a relative
 * path) that the search of the bound trees could not finish finding: one may lie in a granted
 * tree, where the command could connect to it, so the plan is refused.
 */
function refuseLostSockets(lost: NonNullable<SocketPlan['lost']>, grants: Map<string, Grant>, ctx: MountContext): never {
  const literal = grants.get(lost.root)?.literal ?? lost.root;
  const key = (['read', 'write', 'execute', 'append', 'visible'] as const).find((k) => ctx.origins.has(`${k}\0${literal}`));
  const o = key ? ctx.origins.get(`${key}\0${literal}`) : undefined;
  const names = lost.sockets.map((b) => `${JSON.stringify(b.name)}${b.inode !== undefined ? ` (socket inode ${b.inode})` : ''}`);
  const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
  throw new PolicyError(
    o?.file ?? '(policy)',
    o?.keyPath ?? `filesystem.${key ?? 'read'}`,
    `the unix socket${names.length > 1 ? 's' : ''} bound as ${shown} ${names.length > 1 ? 'are' : 'is'} no longer at that name (renamed or linked elsewhere, or bound by a relative path), and Ward stopped looking for where ${names.length > 1 ? 'they are' : 'it is'} in ${literal}, which holds ${lost.stopped}: a socket in a granted tree reaches its server outside the sandbox (connect(2) ignores a read-only bind), and Ward masks each one only where it finds it`,
    `grant only the subdirectories or files the command needs instead of ${literal}; or stop or restart the server holding the socket (\`ss -xlp\` shows it by its inode) so that it listens at a full path`,
  );
}

/**
 * Refuses a writable grant that is or contains the caller's home or one of Ward's own
 * directories (ctx.guarded). Masks cannot make that safe: what the sandbox writes there runs
 * outside it later (~/.bashrc, ~/.profile, systemd user units, Ward's launcher), and a mask is
 * only made for what exists when the plan is made.
 */
function refuseWritableOverGuarded(g: Grant, workspace: string, ctx: MountContext, table: MountTable): void {
  if (!g.writer) return;
  for (const place of ctx.guarded) {
    const real = realOr(place.path); // not there: the name decides
    const direct = isWithin(real, g.real) || isWithin(place.path, g.real);
    // Under another name: a bind mount or second mount of its filesystem inside (or at) the grant.
    const alias = direct ? undefined : aliasesOf(real, table).find((a) => isWithin(a, g.real));
    if (!direct && alias === undefined) continue;
    const o = ctx.origins.get(`${g.writer.key}\0${g.writer.path}`);
    const isWs = g.writer.path === workspace;
    const what = isWs ? `the workspace ${g.writer.path}` : `filesystem.${g.writer.key} ${g.writer.path}`;
    const at = alias ?? real;
    const named = alias === undefined ? `${place.what} ${place.path}` : `${alias}, which is ${place.what} ${place.path} under another name (another mount of the same filesystem, such as a bind mount)`;
    throw new PolicyError(
      o?.file ?? '(policy)',
      o?.keyPath ?? `filesystem.${g.writer.key}`,
      `${what} is writable and ${at === g.real ? 'is' : 'contains'} ${named}: ${place.why}`,
      (isWs
        ? 'use a project directory as the workspace: `ward run --workspace DIR`, or cd into it first (the workspace is the current directory unless --workspace says otherwise)'
        : `grant write only on the directories the command must change (e.g. the project) instead of ${g.writer.path}; a read-only grant there is allowed`) +
        (place.fix ? `; ${place.fix}` : ''),
    );
  }
}

/** The system's own trees (installed software, its configuration and state), not searched for moved sockets. */
const SYSTEM_TREES = ['/usr', '/etc', '/opt', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/boot', '/nix', '/snap', '/var/lib', '/var/cache'];

/** Host filesystems that are never bound in: the sandbox gets fresh ones. */
const SPECIAL = ['/proc', '/dev', '/sys'];

/**
 * Where Ward mounts its launcher inside the sandbox. It must lie on the sandbox's own root
 * tmpfs: inside a bound host tree, bwrap would create the mount point on the host's disk.
 */
export const WARD_DIR_INSIDE = '/.ward';

/**
 * Filesystems through which the host's kernel is configured or observed. Bound in from the
 * host (wherever they are mounted: a recursive bind takes every mount below it), they would
 * hand the sandbox the host's processes, sysctls, devices or cgroups.
 */
const KERNEL_FS = new Set(['proc', 'sysfs', 'devtmpfs', 'devpts', 'debugfs', 'tracefs', 'securityfs', 'bpf', 'configfs', 'cgroup', 'cgroup2', 'efivarfs', 'pstore', 'binfmt_misc', 'fusectl']);

/**
 * Why binding the host's `real` into the sandbox would expose the host's kernel interfaces or
 * cover a place the sandbox needs for itself, or undefined if it would not. Lexical for
 * /proc, /dev, /sys and /.ward (a bind of `/` covers the sandbox's own /proc and /dev, since
 * binds are mounted parents first), and from the mount table for kernel filesystems mounted
 * elsewhere (e.g. a recursive bind of / at /mnt/host brings /mnt/host/proc).
 */
export function kernelTreeProblem(real: string, mounts: () => { dest: string; type: string }[] = () => kernelMounts(readMountTable())): { inside: boolean; what: string } | undefined {
  const inside = [...SPECIAL, WARD_DIR_INSIDE].find((d) => isWithin(real, d));
  if (inside) return { inside: true, what: inside === WARD_DIR_INSIDE ? `${WARD_DIR_INSIDE}, where Ward mounts its launcher inside the sandbox` : inside };
  const contains = [...SPECIAL, WARD_DIR_INSIDE].find((d) => isWithin(d, real));
  if (contains) return { inside: false, what: contains };
  const mnt = mounts().find((m) => isWithin(m.dest, real));
  if (mnt) return { inside: false, what: `${mnt.dest} (the host's ${mnt.type} filesystem)` };
  return undefined;
}

function kernelMounts(table: MountTable): { dest: string; type: string }[] {
  return table.mounts.filter((m) => KERNEL_FS.has(m.type));
}

/**
 * Refuses (or, for an optional entry inside such a tree, skips with a note) a grant that would
 * bind a host kernel tree into the sandbox. A grant that contains one is refused even when
 * optional: `optional` is about a path that may be missing, not about a grant too broad to hold.
 */
function skipKernelTree(entry: FsEntry, key: FsKey, real: string, workspace: string, ctx: MountContext, notes: string[], mounts: () => { dest: string; type: string }[]): boolean {
  const p = kernelTreeProblem(real, mounts);
  if (!p) return false;
  const o = ctx.origins.get(`${key}\0${entry.path}`);
  const file = o?.file ?? '(policy)';
  const at = o?.keyPath ?? `filesystem.${key}`;
  if (p.inside) {
    // The sandbox has its own /proc and /dev; a host path there (or a link into
    // them, like /etc/mtab -> /proc/mounts) would bind the *host's* view in.
    if (!entry.optional) throw new PolicyError(file, at, `${entry.path} resolves to ${real}, inside ${p.what}, which cannot be granted`, `remove it: inside the sandbox that place is the sandbox's own (a private /proc and /dev, no /sys, Ward's launcher)`);
    notes.push(`skipped ${entry.path}: it resolves into ${p.what}, which the sandbox has its own of`);
    return true;
  }
  const what = entry.path === workspace ? `the workspace ${entry.path}` : entry.path === real ? entry.path : `${entry.path} (${real})`;
  throw new PolicyError(
    file,
    at,
    `${what} contains ${p.what}: binding it would put the host's kernel interfaces (processes, sysctls, devices) into the sandbox in place of its own`,
    entry.path === workspace
      ? 'pass --workspace with the project directory, not a directory that contains the whole system'
      : 'grant the directories the command needs instead (e.g. /usr, /etc, /opt, the project); the sandbox has its own /proc and /dev',
  );
}

const KIND_ORDER: Record<MountOp['kind'], number> = { proc: 0, dev: 0, tmpfs: 1, bind: 2, symlink: 3, 'mask-dir': 4, 'mask-file': 4 };

function resolve(entry: FsEntry, key: FsKey, ctx: MountContext): { real: string; stat: Stats } | undefined {
  const st = lstatOrNull(entry.path);
  let real: string | undefined;
  if (st) {
    try {
      real = realpathSync(entry.path);
    } catch {
      real = undefined;
    }
  }
  const rst = real ? lstatOrNull(real) : null;
  if (!real || !rst) {
    if (entry.optional) return undefined;
    const o = ctx.origins.get(`${key}\0${entry.path}`);
    throw new PolicyError(
      o?.file ?? '(policy)',
      o?.keyPath ?? `filesystem.${key}`,
      st ? `${entry.path} is a symlink to a path that does not exist` : `${entry.path} does not exist`,
      `create it, remove the entry, or mark it optional: { path: "${entry.path}", optional: true }`,
    );
  }
  return { real, stat: rst };
}

/**
 * The symlinks met while resolving `p`, outermost first: for /lib64/ld.so on a
 * merged-/usr system that is /lib64 -> usr/lib64. Each is recreated with the
 * same link text, so relative links keep meaning what they mean on the host.
 */
function symlinkChain(p: string): { target: string; dest: string }[] {
  const out: { target: string; dest: string }[] = [];
  let rest = p.split('/').filter(Boolean);
  let cur = '/';
  for (let hops = 0; rest.length > 0 && hops < 40; ) {
    const next = path.posix.join(cur, rest[0]!);
    const st = lstatOrNull(next);
    if (st?.isSymbolicLink()) {
      const target = readlinkSync(next);
      out.push({ target, dest: next });
      const resolved = path.posix.resolve(cur, target);
      rest = [...resolved.split('/').filter(Boolean), ...rest.slice(1)];
      cur = '/';
      hops++;
      continue;
    }
    cur = next;
    rest = rest.slice(1);
  }
  return out;
}

function nearest<T extends { dest: string }>(binds: T[], p: string): T | undefined {
  let best: T | undefined;
  for (const b of binds) if (isWithin(p, b.dest) && (!best || b.dest.length > best.dest.length)) best = b;
  return best;
}

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
