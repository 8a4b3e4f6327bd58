import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const ID_BODY_LENGTH = 24;

/**
 * `prefix-` + 24 base62 characters (~143 bits). Rejection sampling keeps every character
 * equally likely (256 is not a multiple of 62).
 */
export function newId(prefix: string): string {
  let body = '';
  while (body.length < ID_BODY_LENGTH) {
    for (const byte of randomBytes(32)) {
      if (byte < 248 && body.length < ID_BODY_LENGTH) body += ALPHABET[byte % 62];
    }
  }
  return `${prefix}-${body}`;
}

/** IDs of every kind the store hands out, so all layers name things alike. */
export const idPrefix = {
  file: 'file',
  workflow: 'wf',
  run: 'run',
  job: 'ftjob',
  jobEvent: 'ftevent',
  checkpoint: 'ftckpt',
} as const;
