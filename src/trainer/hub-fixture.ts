// For tests: a Hugging Face hub on 127.0.0.1 speaking the hub's documented HTTP contract, used
// through HF_ENDPOINT exactly as the real one is. It serves
//   GET  /v2/OWNER/REPO/manifests/TAG    {ggufFile: {rfilename, size, lfs: {sha256, size}}} (for
//                                        User-Agent llama-cpp, as the hub does), 400 for an unknown tag
//   GET  /api/models/OWNER/REPO          {id, siblings: [{rfilename}]}
//   HEAD|GET /OWNER/REPO/resolve/main/F  302 to the CDN with X-Linked-Size, X-Linked-Etag (sha256),
//                                        X-Repo-Commit, ETag — the hub's answer for LFS files
//   HEAD|GET /cdn/SHA256                 the bytes, with ETag, Accept-Ranges and Range (206)
// plus knobs to make it fail the ways the real one does (gated repos, 404, 429, a connection that
// drops mid-file, a corrupted body). Every request is logged so tests can assert what was asked.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FixtureRepo {
  /** File name → bytes. */
  files: Record<string, Buffer>;
  /** Quant tag served for "latest". */
  defaultQuant?: string;
  /** When set, requests need `Authorization: Bearer <token>` (a gated repository). */
  token?: string;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
  userAgent?: string;
}

export interface LoopbackHub {
  endpoint: string;
  requests: LoggedRequest[];
  repos: Map<string, FixtureRepo>;
  /** Next CDN response ends (the socket is destroyed) after this many body bytes. */
  dropAfterBytes?: number;
  /** Next CDN response sends this many body bytes, then stalls with the connection open. */
  stallAfterBytes?: number;
  /** Next ranged CDN response starts at byte 0 whatever was asked (a broken proxy). */
  misrangeNext?: boolean;
  /** Next CDN response has one byte flipped (same length). */
  corruptNextBody?: boolean;
  /** Every request is answered with this status (e.g. 429) until cleared. */
  forceStatus?: number;
  close(): Promise<void>;
}

const COMMIT = 'a'.repeat(40);

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function startLoopbackHub(repos: Record<string, FixtureRepo>): Promise<LoopbackHub> {
  const hub = { requests: [] as LoggedRequest[], repos: new Map(Object.entries(repos)) } as LoopbackHub;
  const byHash = () => {
    const m = new Map<string, Buffer>();
    for (const r of hub.repos.values()) for (const b of Object.values(r.files)) m.set(sha256(b), b);
    return m;
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    hub.requests.push({
      method: req.method ?? 'GET',
      url: url.pathname,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
    });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (hub.forceStatus) return json(hub.forceStatus, { error: 'forced' }, hub.forceStatus === 429 ? { 'Retry-After': '7' } : {});
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] === 'cdn') return serveBytes(req, res, byHash().get(parts[1] ?? ''), hub);
    const [owner, repoName, ...rest] = parts[0] === 'v2' || parts[0] === 'api' ? parts.slice(parts[0] === 'api' ? 2 : 1) : parts;
    const repo = hub.repos.get(`${owner}/${repoName}`);
    if (!repo) return json(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      return json(401, { error: 'Access to model is restricted. You must have access to it and be authenticated to access it. Please log in.' }, { 'X-Error-Code': 'GatedRepo' });
    }
    if (parts[0] === 'api') return json(200, { id: `${owner}/${repoName}`, siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })) });
    if (parts[0] === 'v2') {
      const tag = (rest[1] ?? '').toUpperCase();
      const want = tag === 'LATEST' ? (repo.defaultQuant ?? 'Q4_K_M') : tag;
      const file = Object.keys(repo.files).find((f) => f.toUpperCase().endsWith(`-${want}.GGUF`));
      if (!file) return json(400, { error: 'The specified tag is not available in the repository. Please use another tag or "latest"' });
      const bytes = repo.files[file]!;
      const ggufFile = { rfilename: file, blobId: createHash('sha1').update(bytes).digest('hex'), size: bytes.length, lfs: { sha256: sha256(bytes), size: bytes.length, pointerSize: 135 } };
      return json(200, { ...(req.headers['user-agent'] === 'llama-cpp' ? { ggufFile } : {}), config: {}, layers: [] });
    }
    if (rest[0] === 'resolve') {
      const file = rest.slice(2).join('/');
      const bytes = repo.files[file];
      if (!bytes) return json(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      const hash = sha256(bytes);
      res.writeHead(302, {
        Location: `/cdn/${hash}`,
        ETag: `"${hash}"`,
        'X-Linked-Etag': `"${hash}"`,
        'X-Linked-Size': String(bytes.length),
        'X-Repo-Commit': COMMIT,
      });
      return res.end();
    }
    return json(404, { error: 'not found' });
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}

function serveBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer | undefined, hub: LoopbackHub): void {
  if (!bytes) {
    res.writeHead(404);
    res.end();
    return;
  }
  const etag = `"${sha256(bytes)}"`;
  let start = 0;
  let end = bytes.length - 1;
  let status = 200;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (range && (!ifRange || ifRange === etag)) {
    start = hub.misrangeNext ? 0 : Number(range[1]);
    hub.misrangeNext = false;
    end = range[2] ? Math.min(Number(range[2]), end) : end;
    if (start >= bytes.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    status = 206;
  }
  let body = bytes.subarray(start, end + 1);
  res.writeHead(status, {
    'Content-Length': String(body.length),
    'Accept-Ranges': 'bytes',
    ETag: etag,
    ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${bytes.length}` } : {}),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (hub.corruptNextBody) {
    hub.corruptNextBody = false;
    body = Buffer.from(body);
    body[body.length >> 1] ^= 0xff;
  }
  const stall = hub.stallAfterBytes;
  if (stall !== undefined) {
    hub.stallAfterBytes = undefined;
    res.write(body.subarray(0, stall));
    return;
  }
  const drop = hub.dropAfterBytes;
  if (drop !== undefined) {
    hub.dropAfterBytes = undefined;
    res.write(body.subarray(0, drop), () => res.destroy());
    return;
  }
  res.end(body);
}
