// The syscall tables against the kernel headers installed on this machine (linux-libc-dev),
// when they are there. Newer headers may know syscalls the tables do not: that fails, on purpose,
// so the tables get updated. Older headers simply know fewer.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { I386_SYSCALLS, X86_64_SYSCALLS } from '../../src/seccomp/index.js';

const HEADERS = '/usr/include/x86_64-linux-gnu/asm';

function parseUnistd(path: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const m of readFileSync(path, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) {
    table.set(m[1]!, Number(m[2]));
  }
  return table;
}

describe('syscall tables', () => {
  for (const [file, table, abi] of [
    ['unistd_64.h', X86_64_SYSCALLS, 'x86_64'],
    ['unistd_32.h', I386_SYSCALLS, 'i386'],
  ] as const) {
    it(`${abi} matches ${HEADERS}/${file}`, (t) => {
      const path = `${HEADERS}/${file}`;
      if (!existsSync(path)) {
        t.skip(`${path} is not installed (apt-get install linux-libc-dev)`);
        return;
      }
      const header = parseUnistd(path);
      assert.ok(header.size > 300, `parsed only ${header.size} entries from ${path}`);
      for (const [name, nr] of header) {
        assert.equal(table[name], nr, `${abi} ${name}: header says ${nr}, table says ${table[name]}`);
      }
    });
  }

  it('i386 has the multiplexers and the calls whose x86_64 twins are denied', () => {
    assert.equal(I386_SYSCALLS['socketcall'], 102);
    assert.equal(I386_SYSCALLS['ipc'], 117);
    assert.equal(I386_SYSCALLS['getpid'], 20);
    assert.equal(I386_SYSCALLS['unshare'], 310);
    assert.equal(I386_SYSCALLS['mseal'], 462);
    assert.equal(I386_SYSCALLS['map_shadow_stack'], undefined, '64-bit only');
  });
});
