// Measures @anthropic-ai/sandbox-runtime's library per call, in a process of
// its own (srt starts proxies and bridges in the caller's process; keeping them
// out of bench/run.js keeps Ward's in-process numbers clean).
//
//   node bench/srt-lib-worker.js SRT_INDEX_JS SETTINGS_JSON      (cwd: the workspace)
//
// Protocol, one JSON object per line: the worker prints {"ready":...} or
// {"error":...} after initialize(); then, for each "call" line on stdin, it
// wraps `true`, spawns the wrapped command through a shell, waits for it to
// close, calls cleanupAfterCommand(), and prints {"ms", "wrapMs", "code"}.
// "quit" (or EOF) resets the manager and exits.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [srtIndex, settingsFile] = process.argv.slice(2);
const send = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const ms = (a, b) => Number(b - a) / 1e6;

let SandboxManager;
try {
  ({ SandboxManager } = await import(pathToFileURL(srtIndex).href));
  const config = JSON.parse(readFileSync(settingsFile, 'utf8'));
  const t0 = process.hrtime.bigint();
  await SandboxManager.initialize(config);
  send({ ready: true, initMs: ms(t0, process.hrtime.bigint()) });
} catch (e) {
  send({ error: `${e?.message ?? e}`.trim() });
  process.exit(1);
}

async function call() {
  const t0 = process.hrtime.bigint();
  const wrapped = await SandboxManager.wrapWithSandbox('true');
  const t1 = process.hrtime.bigint();
  const { code, stderr } = await new Promise((resolve) => {
    const child = spawn(wrapped, { shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const err = [];
    child.stderr.on('data', (c) => err.push(c));
    child.stdout.resume();
    child.on('error', (e) => resolve({ code: null, stderr: e.message }));
    child.on('close', (c, s) => resolve({ code: c ?? s, stderr: Buffer.concat(err).toString('utf8') }));
  });
  SandboxManager.cleanupAfterCommand();
  const t2 = process.hrtime.bigint();
  const out = { ms: ms(t0, t2), wrapMs: ms(t0, t1), code };
  if (code !== 0) out.stderr = stderr.trim().slice(-2000);
  return out;
}

const lines = createInterface({ input: process.stdin });
let done = false;
async function quit() {
  if (done) return;
  done = true;
  try {
    await SandboxManager.reset();
  } catch {
    /* exiting anyway */
  }
  process.exit(0);
}
for await (const line of lines) {
  if (line === 'call') {
    try {
      send(await call());
    } catch (e) {
      send({ error: `${e?.message ?? e}`.trim() });
    }
  } else if (line === 'quit') break;
}
await quit();
