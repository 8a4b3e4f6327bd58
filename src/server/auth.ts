import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.ts';
import { isTicketPath, type LinkTickets } from './link-tickets.ts';

export const TOKEN_FILENAME = 'api-token';

export interface LoadedToken {
  token: string;
  source: 'env' | 'file';
  path?: string;
  /** True when this call created the token file: the only time the token is shown. */
  created: boolean;
}

/**
 * The API token: `NODEAI_API_TOKEN`, else `<dataDir>/api-token`, created on first start with 32
 * random bytes and mode 0600. An existing file readable by others is refused rather than trusted.
 */
export function loadApiToken(dataDir: string, envToken: string | undefined = process.env.NODEAI_API_TOKEN): LoadedToken {
  if (envToken !== undefined && envToken.trim() !== '') {
    const token = envToken.trim();
    if (token.length < 16) throw new Error('NODEAI_API_TOKEN is shorter than 16 characters; use a long random value, e.g. from "openssl rand -hex 32".');
    return { token, source: 'env', created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, TOKEN_FILENAME);
  let created = false;
  try {
    // 'wx': two servers starting together cannot each write a different token.
    writeFileSync(path, 'nodeai-' + randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`Cannot create the API token file ${path}: ${(err as Error).message}. Make the data directory writable or set NODEAI_API_TOKEN.`);
  }
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new Error(`The API token file ${path} is readable by other users. Run "chmod 600 ${path}" and start again.`);
  }
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 16) throw new Error(`The API token file ${path} holds no usable token. Delete it to have a new one generated.`);
  return { token, source: 'file', path, created };
}

// Hashing both sides first gives equal lengths, so the comparison time says nothing about the
// token's length or any prefix of it.
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Bearer auth; a wrong or missing token gets a bare 401 that does not say which it was. The token
 * is read from the Authorization header only: a token in a URL ends up in logs and histories. The
 * events stream and downloads (`isTicketPath`) also take a single-use `?ticket=` from `tickets`.
 */
export function bearerAuth(token: string, tickets?: LinkTickets): MiddlewareHandler {
  const expected = digest(token);
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    const ticket = header === undefined && c.req.method === 'GET' && isTicketPath(c.req.path) ? c.req.query('ticket') : undefined;
    const ok = ticket !== undefined ? tickets?.redeem(ticket, c.req.path) === true : match !== null && timingSafeEqual(digest(match[1]), expected);
    if (!ok) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new ApiError(401, 'unauthorized', 'Missing or invalid API token.');
    }
    await next();
  };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}
