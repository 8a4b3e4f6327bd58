// Request helpers shared by the route files.
import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError, badRequest } from './errors.ts';

/** Parses a JSON body against `schema`; a bad body is a 400 that names the field at fault. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  let body: unknown;
  const text = await c.req.text();
  if (text.trim() === '') body = {};
  else {
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw badRequest('invalid_json', `The request body is not valid JSON: ${(err as Error).message}.`);
    }
  }
  return schema.parse(body);
}

/** A query-string integer within bounds, or the default. */
export function queryInt(c: Context, name: string, def: number, min: number, max: number): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw badRequest('invalid_request', `Query parameter "${name}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 40))}.`, name);
  return n;
}

export const list = <T>(data: T[], hasMore = false) => ({ object: 'list' as const, data, has_more: hasMore });

/** Rejects a body whose declared size is over the limit before any of it is read. */
export function declaredTooLarge(c: Context, limit: number, what: string): void {
  const len = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(len) && len > limit) {
    c.header('Connection', 'close');
    throw new ApiError(413, 'request_too_large', `The ${what} is ${len} bytes; the limit is ${limit}.`, null);
  }
}
