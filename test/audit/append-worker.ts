/**
 * One of the processes of the concurrency tests: appends COUNT records to LOG,
 * signed with KEY, after the parent says "go" on stdin (so all start at once).
 * COUNT "for:MS" appends one record after another for MS milliseconds.
 *   node --import tsx test/audit/append-worker.ts LOG KEY NAME COUNT
 */
import { loadSigningKey } from '../../src/audit/keys.js';
import { AuditWriter } from '../../src/audit/writer.js';

const [file, keyFile, name, count] = process.argv.slice(2) as [string, string, string, string];
const writer = new AuditWriter({ path: file, key: loadSigningKey({ file: keyFile }) });
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  const until = count.startsWith('for:') ? Date.now() + Number(count.slice(4)) : Infinity;
  const n = count.startsWith('for:') ? Infinity : Number(count);
  for (let i = 0; i < n && Date.now() < until; i++) {
    writer.append([{ type: 'denial', run_id: name, layer: 'output', what: 'test', verdict: 'refused', detail: `${name} #${i}`, i }], { checkpoint: i % 25 === 24 });
  }
  process.stdout.write('done\n');
  process.exit(0);
});
