import { Hash64 } from './hash64.ts';
import type { ChatMessage } from './types.ts';

// An example is hashed field by field (Hash64, WebAssembly) rather than as one key string built
// first: building that string was most of a large check's garbage, and node:crypto's per-call
// overhead dominated on ~300-character examples.
// What each field of an example is, in the low four bits of its tag; the message's role sits above
// them. Every message gives one content field (after a ROLE_TEXT field when its role is not one of
// the known ones) and maybe a TOOL_CALLS field, so the sequence of fields reads back one way only.
const STRING_CONTENT = 1;
const JSON_CONTENT = 2;
const TOOL_CALLS = 3;
const EXTRA = 4;
const ROLE_TEXT = 5;
const KEY = 6;

// Known roles as a number in the tag's upper bits; any other role is hashed as text (ROLE_TEXT).
const ROLE_CODES = new Map(['system', 'user', 'assistant', 'tool', 'developer', 'function'].map((role, i) => [role, (i + 1) << 4]));

function roleCode(role: string): number {
  return ROLE_CODES.get(role) ?? 0;
}

/**
 * Remembers examples by a 64-bit digest, not by content: open addressing over one typed array,
 * 12 bytes a slot (digest and line side by side, one cache line per probe), so a million examples
 * take 24 MB whatever their size. Two different examples share a digest with odds of about
 * n²/2⁶⁵ — negligible for a warning.
 */
export class DuplicateFinder {
  /** [hi, lo, line] per slot; line 0 marks an empty slot (line numbers start at 1). */
  private slots = new Uint32Array(3 << 12);
  private capacity = 1 << 12;
  private size = 0;
  private readonly hash = new Hash64();

  /**
   * Records an example seen on `line`; returns the line of its first occurrence when seen before.
   * Examples are the same when their roles, contents and tool calls are, in order, and `extra`
   * (tools, or a DPO line's two outputs) serializes the same with JSON.stringify; names, weights
   * and other message keys are not compared.
   */
  checkExample(messages: ReadonlyArray<ChatMessage>, extra: unknown, line: number): number | null {
    const h = this.hash;
    h.begin();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const role = roleCode(m.role);
      if (role === 0) h.text(String(m.role), ROLE_TEXT);
      const c = m.content;
      if (typeof c === 'string') h.text(c, role | STRING_CONTENT);
      else h.text(JSON.stringify(c ?? null), role | JSON_CONTENT);
      if (m.tool_calls) h.text(JSON.stringify(m.tool_calls), TOOL_CALLS);
    }
    if (extra !== undefined) h.text(JSON.stringify(extra), EXTRA);
    h.end();
    return this.checkDigest(h.hi, h.lo, line);
  }

  /** As `checkExample`, for an identity already written as one string. */
  check(key: string, line: number): number | null {
    const h = this.hash;
    h.begin();
    h.text(key, KEY);
    h.end();
    return this.checkDigest(h.hi, h.lo, line);
  }

  /** Records a digest's two halves seen on `line`; returns the line of its first occurrence. */
  checkDigest(h: number, l: number, line: number): number | null {
    if ((this.size + 1) * 4 > this.capacity * 3) this.grow();
    const slots = this.slots;
    const mask = this.capacity - 1;
    h >>>= 0;
    l >>>= 0;
    let i = l & mask;
    for (;;) {
      const at = slots[i * 3 + 2];
      if (at === 0) {
        slots[i * 3] = h;
        slots[i * 3 + 1] = l;
        slots[i * 3 + 2] = line;
        this.size++;
        return null;
      }
      if (slots[i * 3] === h && slots[i * 3 + 1] === l) return at;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const oldCapacity = this.capacity;
    this.capacity = oldCapacity * 2;
    this.slots = new Uint32Array(this.capacity * 3);
    const slots = this.slots;
    const mask = this.capacity - 1;
    for (let j = 0; j < oldCapacity; j++) {
      const line = old[j * 3 + 2];
      if (line === 0) continue;
      const l = old[j * 3 + 1];
      let i = l & mask;
      while (slots[i * 3 + 2] !== 0) i = (i + 1) & mask;
      slots[i * 3] = old[j * 3];
      slots[i * 3 + 1] = l;
      slots[i * 3 + 2] = line;
    }
  }
}
