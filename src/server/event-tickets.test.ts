// The API token is read from the Authorization header only; the events stream also opens with a
// short-lived single-use ticket, for browsers' EventSource.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventTickets } from './event-tickets.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from './testing.ts';

describe('tokens in URLs and event tickets', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  it('refuses the token in the query string on every route, the events stream included', async () => {
    for (const path of ['/api/v1/secrets', '/api/v1/files', '/v1/models', '/api/v1/events']) {
      const res = await fetch(`${t.url}${path}?access_token=${TEST_TOKEN}`);
      expect(res.status, path).toBe(401);
      await res.body?.cancel();
    }
  });

  it('opens the events stream once with a ticket, and nothing else', async () => {
    const issued = await t.api('/api/v1/events/tickets', { method: 'POST' });
    expect(issued.status).toBe(201);
    const { ticket, expires_at } = await issued.json();
    expect(ticket).toMatch(/^evt-[A-Za-z0-9_-]{32}$/);
    expect(expires_at * 1000).toBeGreaterThan(Date.now());
    expect(expires_at * 1000).toBeLessThanOrEqual(Date.now() + 61_000);

    // Not a key to other routes (and trying does not use it up).
    expect((await fetch(`${t.url}/api/v1/secrets?ticket=${ticket}`)).status).toBe(401);
    const controller = new AbortController();
    const stream = await fetch(`${t.url}/api/v1/events?ticket=${ticket}`, { signal: controller.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    controller.abort();
    const again = await fetch(`${t.url}/api/v1/events?ticket=${ticket}`);
    expect(again.status).toBe(401);
    expect((await fetch(`${t.url}/api/v1/events?ticket=evt-made-up`)).status).toBe(401);
    // Asking for a ticket needs the token.
    expect((await fetch(`${t.url}/api/v1/events/tickets`, { method: 'POST' })).status).toBe(401);
  });

  it('lets a ticket expire', () => {
    let now = 1_000_000;
    const tickets = new EventTickets(60_000, () => now);
    const { ticket } = tickets.issue();
    now += 60_001;
    expect(tickets.redeem(ticket)).toBe(false);
    const fresh = tickets.issue().ticket;
    expect(tickets.redeem(fresh)).toBe(true);
    expect(tickets.redeem(fresh)).toBe(false);
  });
});
