// The API token is read from the Authorization header only; the events stream and downloads also
// open with a short-lived single-use ticket bound to their path, for plain links and EventSource.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkTickets } from './link-tickets.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from './testing.ts';

describe('tokens in URLs and link tickets', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  it('refuses the token in the query string on every route, the events stream included', async () => {
    for (const path of ['/api/v1/secrets', '/api/v1/files', '/v1/models', '/api/v1/events', '/api/v1/models/m/files/model']) {
      const res = await fetch(`${t.url}${path}?access_token=${TEST_TOKEN}`);
      expect(res.status, path).toBe(401);
      await res.body?.cancel();
    }
  });

  it('opens the events stream once with a ticket, and nothing else', async () => {
    const issued = await t.api('/api/v1/events/tickets', { method: 'POST' });
    expect(issued.status).toBe(201);
    const { ticket, expires_at } = await issued.json();
    expect(ticket).toMatch(/^tkt-[A-Za-z0-9_-]{32}$/);
    expect(expires_at * 1000).toBeGreaterThan(Date.now());
    expect(expires_at * 1000).toBeLessThanOrEqual(Date.now() + 61_000);

    // Not a key to other routes (and trying does not use it up).
    expect((await fetch(`${t.url}/api/v1/secrets?ticket=${ticket}`)).status).toBe(401);
    expect((await fetch(`${t.url}/api/v1/models/m/files/model?ticket=${ticket}`)).status).toBe(401);
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
    expect((await fetch(`${t.url}/api/v1/tickets`, { method: 'POST', body: JSON.stringify({ path: '/api/v1/events' }) })).status).toBe(401);
  });

  it('opens one download path once with a ticket for it, and refuses tickets for other routes', async () => {
    const path = `/api/v1/models/${encodeURIComponent('ft:nodeai-tiny:gone:abc')}/files/model`;
    const issued = await t.api('/api/v1/tickets', { method: 'POST', body: JSON.stringify({ path }) });
    expect(issued.status).toBe(201);
    const { ticket, url } = await issued.json();
    expect(url).toBe(`${path}?ticket=${ticket}`);
    // Another model's file is not its path: refused, and the ticket stays unused.
    expect((await fetch(`${t.url}/api/v1/models/other/files/model?ticket=${ticket}`)).status).toBe(401);
    // Past the auth: the route itself answers (this model does not exist).
    const opened = await fetch(t.url + url);
    expect(opened.status).toBe(404);
    expect(((await opened.json()) as { error: { code: string } }).error.code).not.toBe('unauthorized');
    expect((await fetch(t.url + url)).status).toBe(401);

    for (const refused of ['/api/v1/secrets', '/api/v1/models/x/files/model?kind=1', '/v1/files/file-abc/content', '/api/v1/models/x/files/model/../../../secrets']) {
      const res = await t.api('/api/v1/tickets', { method: 'POST', body: JSON.stringify({ path: refused }) });
      expect(res.status, refused).toBe(400);
      const body = await res.json();
      expect(body.error.code, refused).toBe('path_not_ticketable');
      expect(body.error.message).toContain('GET /api/v1/models/:id/files/:kind');
    }
  });

  it('lets a ticket expire, and binds it to its path however the path is encoded', () => {
    let now = 1_000_000;
    const tickets = new LinkTickets(60_000, () => now);
    const { ticket } = tickets.issue('/api/v1/events');
    now += 60_001;
    expect(tickets.redeem(ticket, '/api/v1/events')).toBe(false);
    const fresh = tickets.issue('/api/v1/models/ft:a:b/files/model').ticket;
    expect(tickets.redeem(fresh, '/api/v1/models/ft:a:c/files/model')).toBe(false);
    expect(tickets.redeem(fresh, '/api/v1/models/ft%3Aa%3Ab/files/model')).toBe(true);
    expect(tickets.redeem(fresh, '/api/v1/models/ft:a:b/files/model')).toBe(false);
  });
});
