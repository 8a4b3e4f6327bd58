// The Host check against DNS rebinding: a web page on attacker.example whose name is made to
// resolve to 127.0.0.1 reaches this server with `Host: attacker.example`, and is refused. A local
// server answers only to its loopback names and the names it was started with, as Jupyter and
// Vite do.
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.ts';

/** The names every server answers to. */
export const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'] as const;

/** Names (`--allowed-host`, repeatable) besides the loopback ones; `['*']` allows any Host. */
export type AllowedHosts = readonly string[];

/** `name` of a Host header value, lower-cased, without the port (`[::1]:8787` → `[::1]`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return (colon < 0 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

/** Normalizes one `--allowed-host` value; an IPv6 address is written in brackets, as in a URL. */
export function normalizeAllowedHost(name: string): string {
  const h = name.trim().toLowerCase();
  if (h === '*') return h;
  if (h.includes(':') && !h.startsWith('[')) return `[${h}]`;
  return hostName(h);
}

export function isHostAllowed(header: string | undefined, allowed: AllowedHosts): boolean {
  if (allowed.includes('*')) return true;
  if (!header) return false;
  const name = hostName(header);
  return (LOOPBACK_HOSTS as readonly string[]).includes(name) || allowed.includes(name);
}

export function allowedHostsCheck(allowed: AllowedHosts): MiddlewareHandler {
  const names = allowed.map(normalizeAllowedHost);
  const shown = [...LOOPBACK_HOSTS, ...names].join(', ');
  return async (c, next) => {
    // Without a Host header (HTTP/1.0, or a request made in-process) the URL's host stands in;
    // browsers, the only clients DNS rebinding can steer, always send one.
    const host = c.req.header('host') ?? new URL(c.req.url).host;
    if (!isHostAllowed(host, names)) {
      const given = JSON.stringify((host ?? '').slice(0, 100));
      throw new ApiError(403, 'host_not_allowed', `This server does not answer to Host ${given}; it answers to ${shown}. To allow that name, start it with --allowed-host ${hostName(host ?? '') || 'NAME'}.`);
    }
    await next();
  };
}
