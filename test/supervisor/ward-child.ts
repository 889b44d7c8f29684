/**
 * A Ward process for ward-dies.test.ts: runs a supervised command that sleeps, prints
 * "launched" once the launch record is out, and waits. The test then SIGKILLs this process
 *   node --import tsx test/supervisor/ward-child.ts WORKSPACE HOME SLEEP_SECONDS
 */
import path from 'node:path';
import { run } from '../../src/index.js';

const [ws, home, seconds] = process.argv.slice(2) as [string, string, string];
await run({ profile: 'default' }, ['sh', '-c', `cat ok.txt >/dev/null && exec sleep ${seconds}`], {
  workspace: ws,
  env: { ...process.env, HOME: home },
  stdin: 'ignore',
  allowDegraded: process.env['WARD_TEST_CGROUP'] === 'none',
  audit: false,
  onRecord: (r) => {
    if (r.type === 'launch') process.stdout.write('launched\n');
  },
  supervise: { syscalls: ['openat'], decider: { module: path.join(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), 'decider.ts'), data: {} } },
});
