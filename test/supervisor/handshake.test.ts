/**
 * The launcher's side of supervised mode (supervise_handshake in ward-launch.c), driven by hand:
 * every way the handshake can go wrong stops the launcher before exec, with the step named.
 * Run outside bwrap with `--landlock off`: only the handshake is under test here.
 */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ensureLauncher, innerArgs } from '../../src/launcher/launcher.js';
import { compileNotifyFilter } from '../../src/supervisor/filter.js';
import { loadNative, seqpacketPair } from '../../src/supervisor/native.js';
import { run, status } from '../launcher/helpers.js';

const SUP_FD = 4;
const inner = (cmd: string[]) => [ensureLauncher(), ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: 3, superviseFd: SUP_FD }), ...cmd];

async function handshake(ward: (fd: number) => void) {
  const [ours, theirs] = seqpacketPair();
  const done = run(inner(['sh', '-c', 'echo COMMAND-RAN']), { extraFds: [theirs] });
  closeSync(theirs);
  try {
    ward(ours);
  } finally {
    closeSync(ours);
  }
  const r = await done;
  return { r, s: status(r) };
}

describe('the launcher side of the supervisor handshake', () => {
  it('innerArgs passes --supervise-fd, and refuses it on the status fd', () => {
    assert.deepEqual(innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: 3, superviseFd: 9 }).slice(-3), ['--supervise-fd', '9', '--']);
    assert.throws(() => innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: 3, superviseFd: 3 }), /must differ/);
  });

  it('a malformed filter: the launcher stops at supervise-filter, the command never runs', async () => {
    const { r, s } = await handshake((fd) => assert.equal(loadNative().send(fd, Buffer.from('12345')), 5));
    assert.equal(r.code, 125);
    assert.equal(s.failure?.step, 'supervise-filter');
    assert.equal(s.failure?.code, 'EINVAL');
    assert.doesNotMatch(r.stdout, /COMMAND-RAN/);
  });

  it('Ward gone before the filter: supervise-filter, EPIPE', async () => {
    const { r, s } = await handshake(() => {});
    assert.equal(r.code, 125);
    assert.equal(s.failure?.step, 'supervise-filter');
    assert.equal(s.failure?.code, 'EPIPE');
    assert.doesNotMatch(r.stdout, /COMMAND-RAN/);
  });

  it('the listener arrives, but no go-ahead: supervise-ack, the command never runs unsupervised', async () => {
    let listener = -1;
    const { r, s } = await handshake((fd) => {
      const n = loadNative();
      assert.ok(n.send(fd, compileNotifyFilter(['openat']).program) > 0);
      const got = n.recvFd(fd);
      listener = typeof got === 'number' ? got : got.fd;
    });
    assert.ok(listener >= 0, `the launcher passed a listener fd (got ${listener})`);
    closeSync(listener);
    assert.equal(r.code, 125);
    assert.equal(s.failure?.step, 'supervise-ack');
    assert.doesNotMatch(r.stdout, /COMMAND-RAN/);
  });

  it('with the go-ahead but the listener closed, a notified call fails: the exec gets ENOSYS, nothing runs unsupervised', async () => {
    const { r, s } = await handshake((fd) => {
      const n = loadNative();
      n.send(fd, compileNotifyFilter(['openat']).program);
      const got = n.recvFd(fd);
      assert.ok(typeof got !== 'number', `the launcher passed a listener fd (got ${String(got)})`);
      const listener = got.fd;
      n.send(fd, Buffer.from('G'));
      closeSync(listener); // nobody will answer: execve is always notified
    });
    assert.equal(r.code, 126, r.stderr);
    assert.match(r.stderr, /cannot execute sh: Function not implemented/);
    assert.doesNotMatch(r.stdout, /COMMAND-RAN/);
    assert.equal(s.ready?.proc_status?.['Seccomp'], '2', 'the launcher reported the filter in force before its exec');
    assert.equal(s.failure?.step, 'exec');
  });
});
