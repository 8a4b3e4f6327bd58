// Short-lived, single-use tickets for the few GET routes a browser must open by URL alone: the
// events stream (EventSource cannot send an Authorization header) and big downloads (a model file
// saved through a plain link, never pulled through the page's memory). A long-lived token in a URL
// ends up in logs and histories; a ticket opens one path, once, within a minute. A client with the
// token asks for one (POST /api/v1/tickets {path}) and opens `url` with it.
import { randomBytes } from 'node:crypto';

export const TICKET_TTL_MS = 60_000;
// Tickets are small; the cap only bounds memory against a client that asks and never uses them.
const MAX_OUTSTANDING = 10_000;

/**
 * The routes a ticket may open — the one rule for what can be reached without the token in a
 * header. A download route added later (an export) joins this list.
 */
export const TICKET_ROUTES: ReadonlyArray<{ pattern: RegExp; what: string }> = [
  { pattern: /^\/api\/v1\/events$/, what: 'GET /api/v1/events' },
  { pattern: /^\/api\/v1\/models\/[^/?#]+\/files\/[^/?#]+$/, what: 'GET /api/v1/models/:id/files/:kind' },
  { pattern: /^\/api\/v1\/models\/[^/?#]+\/download$/, what: 'GET /api/v1/models/:id/download' },
  { pattern: /^\/api\/v1\/models\/[^/?#]+\/exports\/[^/?#]+$/, what: 'GET /api/v1/models/:id/exports/:variant' },
];

export function isTicketPath(path: string): boolean {
  return TICKET_ROUTES.some((r) => r.pattern.test(path));
}

export interface LinkTicket {
  ticket: string;
  /** Unix seconds, as OpenAI's times are. */
  expires_at: number;
}

/** A path as the router sees it, whichever of its characters the client percent-encoded. */
function canonicalPath(path: string): string {
  return JSON.stringify(
    path.split('/').map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    }),
  );
}

export class LinkTickets {
  private readonly open = new Map<string, { path: string; expiresAt: number }>();

  constructor(
    private readonly ttlMs = TICKET_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A ticket for one GET of `path` (no query string); check `isTicketPath` first. */
  issue(path: string): LinkTicket {
    const now = this.now();
    this.prune(now);
    if (this.open.size >= MAX_OUTSTANDING) this.open.delete(this.open.keys().next().value!);
    const ticket = 'tkt-' + randomBytes(24).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.open.set(ticket, { path: canonicalPath(path), expiresAt });
    return { ticket, expires_at: Math.floor(expiresAt / 1000) };
  }

  /**
   * True once for a ticket issued here for this path and not yet expired; it is then used up.
   * A ticket shown to another path stays unused: trying it elsewhere opens nothing.
   */
  redeem(ticket: string, path: string): boolean {
    const entry = this.open.get(ticket);
    if (entry === undefined || entry.path !== canonicalPath(path)) return false;
    this.open.delete(ticket);
    return entry.expiresAt > this.now();
  }

  private prune(now: number): void {
    for (const [ticket, entry] of this.open) if (entry.expiresAt <= now) this.open.delete(ticket);
  }
}
