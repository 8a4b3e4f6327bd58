// The server's validation issues, placed where the user can act on them: a config problem on
// its field, in plain words with the node's label, instead of
// 'finetune-mx2py5pb1: Node "finetune-mx2py5pb1" (finetune): config.epochs: Too small: …'.
import { fieldLabel } from './fields.ts';

export interface ApiIssue {
  code?: string;
  message: string;
  node_id: string | null;
  path?: string | null;
}

export interface PlacedIssue {
  nodeId: string | null;
  /** The config field at fault, when there is one. */
  field: string | null;
  /** For the field itself ("must be at least 1"). */
  short: string;
  /** For a list of issues ("Fine-Tune: Epochs must be at least 1."). */
  text: string;
}

/** Zod's wording turned into words a user reads; anything unknown passes through. */
export function plainWords(message: string): string {
  const m = message.replace(/\.$/, '');
  let r: RegExpExecArray | null;
  if ((r = /^Too small: expected (?:number|int) to be >=?\s*(-?[\d.e+-]+)/i.exec(m))) return `must be at least ${r[1]}`;
  if ((r = /^Too small: expected (?:number|int) to be >\s*(-?[\d.e+-]+)/i.exec(m))) return `must be more than ${r[1]}`;
  if ((r = /^Too big: expected (?:number|int) to be <=?\s*(-?[\d.e+-]+)/i.exec(m))) return `must be at most ${r[1]}`;
  if ((r = /^Too small: expected string to have >=?\s*1 characters?/i.exec(m))) return 'must not be empty';
  if ((r = /^Too small: expected string to have >=?\s*(\d+) characters?/i.exec(m))) return `needs at least ${r[1]} characters`;
  if ((r = /^Too big: expected string to have <=?\s*(\d+) characters?/i.exec(m))) return `must be at most ${r[1]} characters`;
  if (/^Invalid input: expected int, received number/i.test(m)) return 'must be a whole number';
  if ((r = /^Invalid input: expected (number|int), received (\w+)/i.exec(m))) return 'must be a number';
  if ((r = /^Invalid option: expected one of (.+)$/i.exec(m))) return `must be one of ${r[1].replace(/\|/g, ', ')}`;
  if (/^Invalid input/i.test(m) && /number|int/.test(m)) return 'must be a number';
  return m.charAt(0).toLowerCase() + m.slice(1);
}

const CONFIG_PATH = /^nodes\[\d+\]\.config\.([A-Za-z0-9_]+)/;
// The server prefixes its messages with where the problem is; the node's label says that here.
const PREFIX = /^(?:Node "[^"]*" \([^)]*\): (?:config(?:\.[\w.[\]]+)?: )?|nodes\[\d+\](?:\.[\w.[\]]+)? \(node "[^"]*"\): |nodes\[\d+\]: )/;

export function placeIssue(issue: ApiIssue, labelOf: (nodeId: string) => string): PlacedIssue {
  const field = issue.path ? (CONFIG_PATH.exec(issue.path)?.[1] ?? null) : null;
  const label = issue.node_id ? labelOf(issue.node_id) : null;
  const body = issue.message.replace(PREFIX, '');
  // Node IDs mentioned in the body read better as labels ("Node "finetune-x1"" → "Fine-Tune").
  const named = body.replace(/Node "([^"]+)"(?: \([a-z_]+\))?/g, (_, id: string) => labelOf(id)).replace(/"([^"\s]+)"/g, (whole, id: string) => (labelOf(id) !== id ? labelOf(id) : whole));
  if (field) {
    const short = plainWords(named);
    return { nodeId: issue.node_id, field, short, text: `${label ? `${label}: ` : ''}${fieldLabel(field)} ${short}.` };
  }
  const sentence = named.charAt(0).toUpperCase() + named.slice(1);
  return { nodeId: issue.node_id, field: null, short: sentence, text: label && !sentence.startsWith(label) ? `${label}: ${sentence}` : sentence };
}
