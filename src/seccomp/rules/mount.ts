/**
 * Mounts. bwrap has already laid out the sandbox's filesystem (read-only binds, a private /tmp,
 * the workspace); letting the command mount, unmount or change root could undo that layout or
 * reach filesystem code (FUSE, overlayfs, image parsers) that is otherwise root-only. With its
 * capabilities dropped the kernel would refuse most of these anyway; the filter makes the
 * refusal independent of capabilities and user namespaces.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'mount', action: DENY_EPERM, why: 'Mounts or remounts (could make a read-only bind writable, or shadow a path).' },
  { syscall: 'umount', action: DENY_EPERM, why: 'i386 only: the old one-argument umount. Unmounting could uncover what a bind mount hides.' },
  { syscall: 'umount2', action: DENY_EPERM, why: 'Unmounting could uncover what a bind mount hides (e.g. a masked path).' },
  { syscall: 'pivot_root', action: DENY_EPERM, why: 'Changes the root mount; a building block of escapes.' },
  { syscall: 'chroot', action: DENY_EPERM, why: 'Changes the root directory; with an open directory fd outside the new root it is the classic chroot escape.' },
  { syscall: 'fsopen', action: DENY_EPERM, why: 'New mount API: opens a filesystem context (the start of a mount).' },
  { syscall: 'fsconfig', action: DENY_EPERM, why: 'New mount API: configures a filesystem context; the filesystem\'s option parser is the attack surface.' },
  { syscall: 'fsmount', action: DENY_EPERM, why: 'New mount API: turns a filesystem context into a mount.' },
  { syscall: 'fspick', action: DENY_EPERM, why: 'New mount API: picks an existing mount to reconfigure it.' },
  { syscall: 'move_mount', action: DENY_EPERM, why: 'New mount API: attaches or moves a mount.' },
  { syscall: 'open_tree', action: DENY_EPERM, why: 'New mount API: with OPEN_TREE_CLONE, detaches a copy of a mount tree that can be attached elsewhere.' },
  { syscall: 'open_tree_attr', action: DENY_EPERM, why: 'Linux 6.15: open_tree that also changes mount attributes (e.g. clears read-only) on the copy.' },
  { syscall: 'mount_setattr', action: DENY_EPERM, why: 'Changes mount attributes such as read-only, nosuid or idmapping.' },
];
