/** What the verify tests share: a clean environment for a test home, and a property looked up by id. */
import assert from 'node:assert/strict';
import type { PropertyResult, VerifyReport } from '../../src/verify/properties/index.js';

/** The caller's environment with HOME set and Ward's XDG directories unset (so they follow HOME). */
export function verifyEnv(home: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', XDG_CACHE_HOME: '' };
}

/** The report's result for property `id`; fails the test if it was not reported. */
export function prop(r: VerifyReport, id: string): PropertyResult {
  const p = r.properties.find((x) => x.id === id);
  assert.ok(p, `property ${id} reported (got ${r.properties.map((x) => x.id).join(', ')})`);
  return p;
}
