/**
 * loopGrace: a grace period that cannot expire on input already in the kernel but not yet read
 * because Ward's event loop was busy.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { loopGrace } from '../../src/loop-grace.js';

/** A connected pair over loopback; `received` turns true on the first byte the server side reads. */
async function pair(): Promise<{ client: Socket; received: () => boolean; close(): void }> {
  let got = false;
  let peer: Socket | undefined;
  const server = createServer((s) => {
    peer = s;
    s.on('data', () => (got = true));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  while (!peer) await new Promise((r) => setImmediate(r));
  return { client, received: () => got, close: () => (client.destroy(), peer?.destroy(), server.close()) };
}

/** Holds the thread, as a burst of synchronous audit appends did. */
function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

/**
 * Data is written (it is in the receiver's kernel buffer at once over loopback), then the wait
 * starts, then the loop is held past its end: from the check phase, so the next turn runs the
 * expired timer before it polls.
 */
async function raced(wait: (ms: number) => Promise<void>): Promise<boolean> {
  const p = await pair();
  try {
    return await new Promise<boolean>((resolve) =>
      setImmediate(() => {
        p.client.write('x');
        void wait(20).then(() => resolve(p.received()));
        busy(100);
      }),
    );
  } finally {
    p.close();
  }
}

describe('loopGrace: a grace period on a busy event loop', () => {
  it('a plain timer expires before the poll that reads input sent before it started (the race it exists for)', async () => {
    assert.equal(await raced((ms) => new Promise((r) => setTimeout(r, ms))), false);
  });

  it('loopGrace ends only after that poll: the input is read by then', async () => {
    assert.equal(await raced((ms) => loopGrace(ms, true).start()), true);
    assert.equal(await raced((ms) => loopGrace(ms, false).start()), true);
  });

  it('cancel() stops it before and after the timer fired; unref leaves the loop free to end', async () => {
    let ended = false;
    const g = loopGrace(5, true);
    void g.start().then(() => (ended = true));
    g.cancel();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ended, false);

    const h = loopGrace(0, true);
    void h.start().then(() => (ended = true));
    await new Promise<void>((r) => setTimeout(r, 0)); // h's timer has fired by now or fires in this turn
    h.cancel();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ended, false, 'cancel after the timer still stops the pending turn');

    const late = loopGrace(0, true);
    late.cancel();
    void late.start().then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ended, false, 'started after cancel (a race already won): it never ends');
  });
});
