/**
 * HTML built from a tagged template that escapes every interpolated value
 * unless it is already `Html` (made by this same template). Probe details are
 * arbitrary program output; with this, there is no way to put one into the page
 * as markup by forgetting to call an escape function.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Fragment = Html | string | number | boolean | null | undefined | readonly Fragment[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an element body or a double-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/**
 * Control characters (ANSI colour codes, NUL, ...) shown as visible `\xNN`
 * rather than passed to the page, where they would vanish or render as boxes.
 */
export function visibleControls(text: string): string {
  return text.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function render(f: Fragment): string {
  if (f instanceof Html) return f.value;
  if (f === null || f === undefined || f === false) return '';
  if (Array.isArray(f)) return f.map(render).join('');
  return escapeHtml(visibleControls(String(f)));
}

/** `h\`<td>${text}</td>\``: every `${}` is escaped unless it is Html. */
export function h(strings: TemplateStringsArray, ...values: Fragment[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/** Markup that is trusted because it is a constant in this code base (the stylesheet). */
export function trusted(markup: string): Html {
  return new Html(markup);
}
