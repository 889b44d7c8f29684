/**
 * Applied only when the policy sets resources.file_size (compileSeccomp's `fileSize`), so not
 * part of SECCOMP_RULES.
 *
 * RLIMIT_FSIZE is checked where a file grows: write, truncate, and fallocate without
 * FALLOC_FL_KEEP_SIZE (inode_newsize_ok). A keep-size fallocate allocates disk blocks beyond
 * the file's end and never checks it, so one file under a 1 MiB limit could take gigabytes of
 * disk; FALLOC_FL_INSERT_RANGE grows the size without the check too. So fallocate keeps the
 * two modes that respect the limit or free space: 0 (plain allocation, checked) and
 * PUNCH_HOLE | KEEP_SIZE (deallocation). Every other mode fails with EOPNOTSUPP, the answer a
 * filesystem that lacks the mode gives: posix_fallocate and its callers then write instead,
 * where the limit applies.
 */
import type { SeccompRule } from '../rule.js';

/** include/uapi/linux/falloc.h */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const EOPNOTSUPP = 95;

export const FILE_SIZE_RULES: readonly SeccompRule[] = [
  {
    syscall: 'fallocate',
    action: { errno: EOPNOTSUPP },
    when: { arg: 1, notIn32: [0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE] },
    why: 'resources.file_size: a keep-size (or insert-range) fallocate takes disk without RLIMIT_FSIZE being checked. Plain allocation and hole punching stay allowed.',
  },
];
