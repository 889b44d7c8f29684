/** Sizes and durations as people write them in a policy, turned into plain numbers. */

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

/** Bytes, or null for "unlimited". Bare K/M/G are binary, like `ulimit` and cgroups. */
export function parseSize(v: number | string): number | null {
  if (v === 'unlimited') return null;
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new Error(`not a size: ${JSON.stringify(v)}`);
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { '': 1, ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds, or null for "unlimited". */
export function parseDuration(v: number | string): number | null {
  if (v === 'unlimited') return null;
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = DURATION_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new Error(`not a duration: ${JSON.stringify(v)}`);
  return Number(m[1]) * unit;
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return `${n}B`;
}
