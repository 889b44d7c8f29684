/**
 * Positive probes: legitimate work that must succeed under the same policy, so
 * a sandbox that refuses everything does not pass. Here `held` means the work
 * got done; `broken` means the policy stopped ordinary work (the usability
 * promise failed). Optional toolchains (git, gcc) are skipped when the host
 * does not have them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { broken, held, kv, tail } from '../lib.js';
import type { Probe, ProbeRun, Verdict } from '../types.js';

const group = 'positive' as const;

// Looked up, never run: the probe runs it inside the sandbox, by the sandbox's PATH.
const onPath = (bin: string): string | null => ((process.env['PATH'] ?? '').split(':').some((d) => path.isAbsolute(d) && existsSync(path.join(d, bin))) ? null : `${bin} is not installed on this host`);

/** The work succeeded: exit 0 and every expected `key=value` line. */
function worked(expected: Record<string, string>, what: string): (run: ProbeRun) => Verdict {
  return (run) => {
    if (run.exitCode !== 0) return broken(`${what} failed (exit ${run.exitCode}${run.reason !== 'exit' ? `, ${run.reason}` : ''}): ${tail(run.stderr) || tail(run.stdout)}`);
    const v = kv(run.stdout);
    for (const [k, want] of Object.entries(expected)) {
      if (v.get(k) !== want) return broken(`${what}: expected ${k}=${want}, got ${v.has(k) ? `${k}=${v.get(k)}` : 'nothing'}${run.stderr.trim() ? ` (${tail(run.stderr)})` : ''}`);
    }
    return held(`${what}: done`);
  };
}

const base = {
  group,
  promise: 'usability' as const,
  mechanism: 'sandbox' as const,
  asi: ['ASI02' as const],
  nist: ['CM-7', 'SC-39'],
  expect: 'works' as const,
};

export const probes: Probe[] = [
  {
    ...base,
    id: 'ok.workspace-files',
    title: 'create, read, rename and delete files and directories in the workspace',
    program: { sh: 'mkdir -p a/b && echo hello > a/b/f && mv a/b/f a/g && rm -r a/b && echo "content=$(cat a/g)" && ln -s g a/link && echo "link=$(cat a/link)"' },
    check: (run, ctx) => {
      const v = worked({ content: 'hello', link: 'hello' }, 'file work in the workspace')(run);
      if (v.status !== 'held') return v;
      const g = path.join(ctx.ws, 'a', 'g');
      if (!existsSync(g) || readFileSync(g, 'utf8') !== 'hello\n') return broken('the file written inside is not in the host workspace');
      return held('created, renamed, linked and deleted files; the results are in the host workspace');
    },
  },
  {
    ...base,
    id: 'ok.git-commit',
    title: 'git init, add and commit in the workspace',
    requires: () => onPath('git'),
    program: { sh: 'git init -q . && echo x > f && git add f && git -c user.name=probe -c user.email=probe@example.invalid commit -qm init && echo "commits=$(git log --oneline | wc -l)"' },
    check: (run, ctx) => {
      const v = worked({ commits: '1' }, 'git init + commit')(run);
      if (v.status !== 'held') return v;
      return existsSync(path.join(ctx.ws, '.git', 'HEAD')) ? held('git init + commit: one commit, repository in the host workspace') : broken('the repository is not in the host workspace');
    },
  },
  {
    ...base,
    id: 'ok.python-script',
    title: 'run a Python script from the workspace (json, hashlib, sqlite3, subprocess)',
    setup: (ctx) =>
      writeFileSync(
        path.join(ctx.ws, 'work.py'),
        [
          'import hashlib, json, sqlite3, subprocess',
          'db = sqlite3.connect(":memory:")',
          'db.execute("create table t (x)"); db.executemany("insert into t values (?)", [(i,) for i in range(100)])',
          'total = db.execute("select sum(x) from t").fetchone()[0]',
          'out = subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip()',
          'print("sum=%d" % total)',
          'print("sha=%s" % hashlib.sha256(json.dumps({"a": 1}).encode()).hexdigest()[:8])',
          'print("child=%s" % out)',
        ].join('\n'),
      ),
    program: { argv: ['python3', 'work.py'] },
    check: worked({ sum: '4950', sha: 'f9d86028', child: 'child' }, 'a Python script'),
  },
  {
    ...base,
    id: 'ok.node-script',
    title: 'run a Node.js program (fs, crypto, child_process, worker threads)',
    program: {
      node: `const fs = require('fs'), crypto = require('crypto'), cp = require('child_process'), { Worker } = require('worker_threads');
fs.writeFileSync('n.txt', 'node');
console.log('read=' + fs.readFileSync('n.txt', 'utf8'));
console.log('hash=' + crypto.createHash('sha256').update('x').digest('hex').slice(0, 8));
console.log('child=' + cp.execFileSync('sh', ['-c', 'echo sub']).toString().trim());
new Worker('require("worker_threads").parentPort.postMessage(6*7)', { eval: true }).on('message', (m) => console.log('worker=' + m));`,
    },
    check: worked({ read: 'node', hash: '2d711642', child: 'sub', worker: '42' }, 'a Node.js program'),
  },
  {
    ...base,
    id: 'ok.c-compile',
    title: 'compile a C program with gcc in the workspace and run it',
    requires: () => onPath('gcc'),
    program: { sh: `printf '#include <stdio.h>\\nint main(void){printf("built=%%d\\\\n", 6*7);return 0;}\\n' > hello.c && gcc -O1 -o hello hello.c && ./hello` },
    check: worked({ built: '42' }, 'compile and run a C program'),
  },
  {
    ...base,
    id: 'ok.pipes-subprocesses',
    title: 'pipelines, nested shells, background jobs and threads',
    program: {
      sh: `echo "max=$(seq 1 20000 | sort -rn | head -1)"
echo "nested=$(sh -c 'sh -c "echo deep"')"
(sleep 0.1; echo bg > bg.txt) & wait; echo "bg=$(cat bg.txt)"
python3 -c "import threading; r=[]; t=[threading.Thread(target=r.append, args=(i,)) for i in range(16)]; [x.start() for x in t]; [x.join() for x in t]; print('threads=%d' % len(r))"`,
    },
    check: worked({ max: '20000', nested: 'deep', bg: 'bg', threads: '16' }, 'pipes, subshells, jobs and threads'),
  },
  {
    ...base,
    id: 'ok.tmp-usable',
    title: 'use /tmp (mktemp, write, read), private to this run',
    program: { sh: 'f=$(mktemp) && echo scratch > "$f" && echo "tmp=$(cat "$f")" && d=$(mktemp -d) && touch "$d/x" && echo "dir=$(ls "$d")"' },
    check: worked({ tmp: 'scratch', dir: 'x' }, '/tmp'),
  },
  {
    ...base,
    id: 'ok.home-writable',
    title: 'tools write caches and config into $HOME (private to this run)',
    program: { sh: 'mkdir -p ~/.cache/tool && echo cached > ~/.cache/tool/c && echo "cache=$(cat ~/.cache/tool/c)"' },
    check: worked({ cache: 'cached' }, 'writing under $HOME'),
  },
  {
    ...base,
    id: 'ok.localhost-server',
    title: 'serve and connect on 127.0.0.1 inside the sandbox (a test server, no DNS)',
    program: {
      python: `import socket, threading
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    c.sendall(b'pong')
    c.close()
threading.Thread(target=serve).start()
cl = socket.create_connection(('127.0.0.1', port), timeout=5)
print('reply=%s' % cl.recv(16).decode())`,
    },
    check: worked({ reply: 'pong' }, 'a loopback server inside the sandbox'),
  },
  {
    ...base,
    id: 'ok.devices',
    title: 'use /dev/null, /dev/zero, /dev/urandom and /dev/full',
    program: {
      sh: `echo x > /dev/null && echo "null=ok"
echo "zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')"
echo "random=$(head -c 16 /dev/urandom | wc -c)"
if echo x > /dev/full 2>/dev/null; then echo "full=accepted"; else echo "full=ENOSPC"; fi`,
    },
    check: worked({ null: 'ok', zero: '00000000', random: '16', full: 'ENOSPC' }, 'device nodes'),
  },
  {
    ...base,
    id: 'ok.system-files',
    title: 'read what programs need from the system: /etc/passwd, CA certificates, /usr/share',
    program: { sh: 'echo "root=$(grep -c "^root:" /etc/passwd)"; echo "certs=$(ls /etc/ssl/certs 2>/dev/null | head -1 | wc -l)"; echo "share=$(ls /usr/share | head -1 | wc -l)"' },
    check: worked({ root: '1', share: '1' }, 'system files'),
  },
  {
    ...base,
    id: 'ok.exit-status',
    title: "the command's exit status reaches the caller unchanged",
    program: { sh: 'echo "ran=1"; exit 42' },
    check: (run) => (run.exitCode === 42 && kv(run.stdout).get('ran') === '1' ? held('exit status 42 passed through') : broken(`expected exit 42, got ${run.exitCode} (${run.reason})`)),
  },
];
