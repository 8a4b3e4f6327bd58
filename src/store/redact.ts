export const REDACTED = '[REDACTED]';

/**
 * Secrets shorter than this (in UTF-8 bytes) are never searched for: a value like "e" would mask
 * every "e" of every name, message and result. The vault refuses to store them; one stored by an
 * older version still works but is not masked.
 */
export const MIN_REDACTABLE_BYTES = 8;

export function isRedactable(secret: string): boolean {
  return Buffer.byteLength(secret, 'utf8') >= MIN_REDACTABLE_BYTES;
}

/**
 * Replaces every known secret value in text and JSON-like values. The vault registers each
 * secret it stores or hands out, so whatever a node, provider or error echoes back — the raw
 * value, or the value as it appears inside JSON or a URL — is masked before it is logged or
 * stored. Keys of JSON objects are names chosen by the program, never rewritten.
 */
export class Redactor {
  private readonly needles = new Set<string>();
  private sorted: string[] = [];
  /** Directories whose absolute path is shortened to the part below them: `<dir>/jobs/x` → `jobs/x`. */
  private readonly hiddenDirs: { dir: string; pattern: RegExp }[] = [];

  add(secret: string): void {
    if (!secret || !isRedactable(secret)) return;
    const before = this.needles.size;
    for (const form of [secret, JSON.stringify(secret).slice(1, -1), urlForm(secret)]) {
      this.needles.add(form);
    }
    // Longest first, so a secret that contains another is masked whole.
    if (this.needles.size !== before) this.sorted = [...this.needles].sort((a, b) => b.length - a.length);
  }

  /**
   * Messages, events and errors show paths below `dir` relative to it (a job's folder as
   * `jobs/ftjob-…/…`, an upload by its ID), not where the server keeps its data.
   */
  hidePath(dir: string): void {
    const clean = dir.replace(/[\\/]+$/, '');
    if (clean.length <= 1 || this.hiddenDirs.some((h) => h.dir === clean)) return;
    // The directory followed by a separator (dropped), or by nothing that continues a name.
    const pattern = new RegExp(clean.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '(?:[\\\\/]|(?![\\w-]|\\.[\\w-]))', 'g');
    this.hiddenDirs.push({ dir: clean, pattern });
    this.hiddenDirs.sort((a, b) => b.dir.length - a.dir.length);
  }

  get size(): number {
    return this.needles.size;
  }

  redact(text: string): string {
    let out = text;
    for (const needle of this.sorted) {
      if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    }
    for (const { dir, pattern } of this.hiddenDirs) {
      if (out.includes(dir)) out = out.replace(pattern, (m) => (m.length > dir.length ? '' : 'the data directory'));
    }
    return out;
  }

  /** A deep copy of a JSON-like value with secrets masked in every string value (not in keys). */
  redactValue<T>(value: T): T {
    if (this.sorted.length === 0 && this.hiddenDirs.length === 0) return value;
    return this.walk(value, new WeakSet()) as T;
  }

  /** `code: message` of an error and its causes, secrets masked: the form logs and results take. */
  formatError(err: unknown): string {
    return this.redact(describeError(err));
  }

  private walk(value: unknown, seen: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v, seen));
    if (value instanceof Error) return this.formatError(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.walk(v, seen);
    return out;
  }
}

/** The value as it appears in a URL; itself when it has none (half a surrogate pair cannot be encoded). */
function urlForm(secret: string): string {
  try {
    return encodeURIComponent(secret);
  } catch {
    return secret;
  }
}

export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(typeof code === 'string' ? `${code}: ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(' (caused by: ') + ')'.repeat(Math.max(0, parts.length - 1));
}
