// Short-lived, single-use tickets for the events stream: a browser's EventSource cannot send an
// Authorization header, and a long-lived token in a URL ends up in logs and histories. A client
// with the token asks for a ticket (POST /api/v1/events/tickets) and opens
// GET /api/v1/events?ticket=… with it within a minute; the ticket opens that stream once and
// nothing else.
import { randomBytes } from 'node:crypto';

export const TICKET_TTL_MS = 60_000;
// Tickets are small; the cap only bounds memory against a client that asks and never uses them.
const MAX_OUTSTANDING = 10_000;

export interface EventTicket {
  ticket: string;
  /** Unix seconds, as OpenAI's times are. */
  expires_at: number;
}

export class EventTickets {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly ttlMs = TICKET_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  issue(): EventTicket {
    const now = this.now();
    this.prune(now);
    if (this.open.size >= MAX_OUTSTANDING) this.open.delete(this.open.keys().next().value!);
    const ticket = 'evt-' + randomBytes(24).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.open.set(ticket, expiresAt);
    return { ticket, expires_at: Math.floor(expiresAt / 1000) };
  }

  /** True once for a ticket issued here and not yet expired; it cannot be used again. */
  redeem(ticket: string): boolean {
    const expiresAt = this.open.get(ticket);
    if (expiresAt === undefined) return false;
    this.open.delete(ticket);
    return expiresAt > this.now();
  }

  private prune(now: number): void {
    for (const [ticket, expiresAt] of this.open) if (expiresAt <= now) this.open.delete(ticket);
  }
}
