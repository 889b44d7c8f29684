/**
 * The one message Ward sends a warm sandbox (ward-launch.c, read_argv): the command's argv,
 *
 *   u32 LEN (host byte order) | ARG0 NUL ARG1 NUL ... ARGn NUL      (LEN bytes)
 *
 * and nothing else. The environment, the directory, the limits and every layer were fixed by
 * the policy when the sandbox was built; a message that could carry them could loosen them.
 */
import { endianness } from 'node:os';
import { WardError } from '../errors.js';

/** The launcher refuses larger messages (ARGV_MSG_MAX in ward-launch.c). */
export const ARGV_MESSAGE_MAX = 1 << 20;
/** The launcher refuses more arguments (ARGV_MSG_MAX_ARGS). */
export const ARGV_MESSAGE_MAX_ARGS = 65536;

export function encodeArgvMessage(argv: readonly string[]): Buffer {
  if (!Array.isArray(argv) || argv.length === 0) throw new WardError('no command given', { step: 'pool:handout', fix: 'pool.run([COMMAND, ...ARGS])' });
  if (argv.length > ARGV_MESSAGE_MAX_ARGS) throw new WardError(`the command has ${argv.length} arguments; a pooled sandbox takes at most ${ARGV_MESSAGE_MAX_ARGS}`, { step: 'pool:handout' });
  for (const [i, a] of argv.entries()) {
    if (typeof a !== 'string') throw new WardError(`argv[${i}] is not a string`, { step: 'pool:handout' });
    if (a.includes('\0')) throw new WardError(`argv[${i}] contains a NUL byte, which no command can receive`, { step: 'pool:handout' });
  }
  if (argv[0] === '') throw new WardError('the command (argv[0]) is empty', { step: 'pool:handout' });
  const body = Buffer.from(argv.map((a) => `${a}\0`).join(''), 'utf8');
  if (body.length > ARGV_MESSAGE_MAX) {
    throw new WardError(`the command line is ${body.length} bytes; a pooled sandbox takes at most ${ARGV_MESSAGE_MAX}`, { step: 'pool:handout', fix: 'pass large inputs through a file in the workspace or stdin instead' });
  }
  const head = Buffer.alloc(4);
  if (endianness() === 'LE') head.writeUInt32LE(body.length);
  else head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}
