/**
 * Text a sandbox could have chosen (file names, Host headers, SNI, argv), made
 * safe to print on one terminal line: the timeline of `ward audit show` and the
 * notices `ward run` prints to stderr. A name like "x\n2026-... exit 0" or one
 * carrying ESC sequences would otherwise forge a line of evidence or rewrite
 * the lines above it.
 */

// C0 controls, DEL, C1 (NEL U+0085 among them: a line break to some terminals and
// viewers), the Unicode line and paragraph separators, and the bidi controls that can
// make a line read in another order than it is (overrides, embeddings, isolates, marks).
// The backslash too, so that an escape shown always means the character, never a
// name that spells one.
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `printable(String(v))`: for record fields of any type. */
export function shown(v: unknown): string {
  return printable(String(v));
}
