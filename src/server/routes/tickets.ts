import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest } from '../errors.ts';
import { readJson } from '../http.ts';
import { isTicketPath, TICKET_ROUTES, type LinkTickets } from '../link-tickets.ts';

const TicketBody = z.object({
  path: z.string().min(1).max(2048).describe('The path the ticket will open, e.g. /api/v1/models/ft:…/files/model (no query string).'),
});

// POST /api/v1/tickets {path} → 201 {ticket, expires_at, url}: one GET of `url` within a minute,
// without the token, for a plain link (a big download) or an EventSource. POST
// /api/v1/events/tickets is the same for the events stream, kept for the clients that use it.
export function ticketRoutes(tickets: LinkTickets): Hono {
  const app = new Hono();
  app.post('/tickets', async (c) => {
    const { path } = await readJson(c, TicketBody);
    if (!isTicketPath(path)) {
      throw badRequest('path_not_ticketable', `A ticket opens only ${TICKET_ROUTES.map((r) => r.what).join(', ')}; "${path.slice(0, 200)}" is none of them (and takes no query string). Send the token in the Authorization header instead.`, 'path');
    }
    const issued = tickets.issue(path);
    return c.json({ ...issued, url: `${path}?ticket=${issued.ticket}` }, 201);
  });
  app.post('/events/tickets', (c) => c.json(tickets.issue('/api/v1/events'), 201));
  return app;
}
