import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { LOOPBACK_HOSTS } from './allowed-hosts.ts';
import { isLoopbackHost } from './auth.ts';
import { createApp, type AppOptions, type NodeAiApp } from './app.ts';

export interface StartOptions extends AppOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface RunningServer extends NodeAiApp {
  server: Server;
  jobs?: StartOptions['jobs'];
  url: string;
  port: number;
  /** Stops accepting, ends event streams, waits for requests in flight (at most `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8787;

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  if (!isLoopbackHost(host) && !options.token) {
    throw new Error(`Refusing to listen on ${host} without an API token: anyone on the network could train, read files and use secrets. Set NODEAI_API_TOKEN or listen on 127.0.0.1.`);
  }
  if (!isLoopbackHost(host) && !options.allowedHosts?.length) {
    throw new Error(
      `Listening on ${host} needs the host names clients will use: pass --allowed-host NAME (repeatable; e.g. the machine's name or address), or --allowed-host '*' to answer any name. Without it the server answers only to ${LOOPBACK_HOSTS.join(', ')}, which no other machine can reach.`,
    );
  }
  const built = createApp(options);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: built.app.fetch, hostname: host, port: options.port ?? DEFAULT_PORT }) as Server;
    s.once('listening', () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    ...built,
    server,
    jobs: options.jobs,
    port,
    url: `http://${shown}:${port}`,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await built.close();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
