/**
 * One of the processes of the concurrency test: appends COUNT records to LOG,
 * signed with KEY, after the parent says "go" on stdin (so all start at once).
 *   node --import tsx test/audit/append-worker.ts LOG KEY NAME COUNT
 */
import { loadSigningKey } from '../../src/audit/keys.js';
import { AuditWriter } from '../../src/audit/writer.js';

const [file, keyFile, name, count] = process.argv.slice(2) as [string, string, string, string];
const writer = new AuditWriter({ path: file, key: loadSigningKey({ file: keyFile }) });
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  for (let i = 0; i < Number(count); i++) {
    writer.append([{ type: 'denial', run_id: name, layer: 'output', what: 'test', verdict: 'refused', detail: `${name} #${i}`, i }], { checkpoint: i % 25 === 24 });
  }
  process.stdout.write('done\n');
  process.exit(0);
});
