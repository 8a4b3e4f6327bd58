import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { parseAllowedHost, type VaultKey, type VaultKeyLookup } from '../providers/key-binding.ts';
import { InvalidInputError, SecretDecryptError, SecretKeyError, SecretNotFoundError } from './errors.ts';
import { isRedactable, MIN_REDACTABLE_BYTES, Redactor } from './redact.ts';
import type { Database } from './schema.ts';

export const SECRET_KEY_FILENAME = 'secret.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

export interface SecretKey {
  version: number;
  key: Buffer;
}

export interface SecretInfo {
  name: string;
  key_version: number;
  created_at: number;
  updated_at: number;
  /** Hosts besides its provider's own that the secret, as an API key, may be sent to. */
  allowed_hosts: string[];
  /**
   * Stored by an older version with a value shorter than the minimum: it still works, but is not
   * masked in logs and results (see MIN_REDACTABLE_BYTES). Set it again with a longer value.
   */
  short: boolean;
}

export interface SetSecretOptions {
  /**
   * Hosts (`host` or `host:port`) besides its provider's own that the secret may be sent to as
   * an API key. Omitted on an update: the ones stored before stay.
   */
  allowedHosts?: readonly string[];
}

export interface LoadedKey extends SecretKey {
  source: 'env' | 'file';
  /** The key file, when the key came from one. */
  path?: string;
}

/**
 * The vault key: `NODEAI_SECRET_KEY` (32 bytes as 64 hex characters or as base64), else
 * `<dataDir>/secret.key`, created on first use with 32 random bytes and mode 0600.
 * The key is version 1; the version column leaves room for rotation.
 */
export function loadSecretKey(dataDir: string, envKey: string | undefined = process.env.NODEAI_SECRET_KEY): LoadedKey {
  if (envKey !== undefined && envKey.trim() !== '') {
    return { version: 1, key: parseKey(envKey, 'NODEAI_SECRET_KEY'), source: 'env' };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, SECRET_KEY_FILENAME);
  try {
    // 'wx' fails if the file exists, so two processes starting together cannot overwrite
    // each other's key.
    writeFileSync(path, randomBytes(KEY_BYTES).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new SecretKeyError(`Cannot create the secret key file ${path}: ${(err as Error).message}. Make the data directory writable or set NODEAI_SECRET_KEY.`);
    }
  }
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
    throw new SecretKeyError(`The secret key file ${path} is readable by other users. Run "chmod 600 ${path}" and start again.`);
  }
  return { version: 1, key: parseKey(readFileSync(path, 'utf8'), path), source: 'file', path };
}

/** Never echoes the key itself: the message names only where it came from and what is expected. */
function parseKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) key = Buffer.from(trimmed, 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new SecretKeyError(
      `The secret key in ${where} is not 32 bytes written as 64 hex characters or as base64. Generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))"`,
    );
  }
  return key;
}

/**
 * Secrets encrypted with AES-256-GCM: a random 12-byte IV per write, the auth tag and the key
 * version stored beside the ciphertext, and the secret's name as additional authenticated data
 * so a ciphertext copied onto another name fails to open.
 */
export class SecretsVault {
  readonly redactor: Redactor;
  private readonly keys: Map<number, Buffer>;
  private readonly current: SecretKey;

  constructor(
    private readonly db: Kysely<Database>,
    keys: SecretKey | SecretKey[],
    redactor: Redactor = new Redactor(),
  ) {
    const list = Array.isArray(keys) ? keys : [keys];
    if (list.length === 0) throw new SecretKeyError('The secrets vault needs at least one key.');
    for (const k of list) {
      if (k.key.length !== KEY_BYTES) throw new SecretKeyError(`Secret key version ${k.version} is ${k.key.length} bytes; it must be 32.`);
    }
    this.current = list[0];
    this.keys = new Map(list.map((k) => [k.version, k.key]));
    this.redactor = redactor;
  }

  async set(name: string, value: string, options: SetSecretOptions = {}): Promise<void> {
    checkName(name);
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidInputError('value', `Secret ${JSON.stringify(name)} needs a non-empty string value.`);
    }
    const broken = loneSurrogateAt(value);
    if (broken >= 0) {
      // UTF-8 has no form for half a surrogate pair: the stored value would not be the one given.
      throw new InvalidInputError('value', `Secret ${JSON.stringify(name)} is not well-formed text: character ${broken + 1} is half of a UTF-16 surrogate pair. Store the key exactly as its provider issued it.`);
    }
    if (!isRedactable(value)) {
      throw new InvalidInputError(
        'value',
        `Secret ${JSON.stringify(name)} is ${Buffer.byteLength(value, 'utf8')} bytes; the minimum is ${MIN_REDACTABLE_BYTES}, since a shorter value cannot be masked in logs and results without masking ordinary text.`,
      );
    }
    const hosts = options.allowedHosts === undefined ? undefined : parseAllowedHosts(options.allowedHosts);
    this.redactor.add(value);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(aad(name));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const now = Date.now();
    const row = {
      ciphertext: ciphertext.toString('base64'),
      iv: iv.toString('base64'),
      auth_tag: cipher.getAuthTag().toString('base64'),
      key_version: this.current.version,
      updated_at: now,
      ...(hosts !== undefined ? { allowed_hosts_json: hosts.length ? JSON.stringify(hosts) : null } : {}),
    };
    await this.db
      .insertInto('secrets')
      .values({ name, created_at: now, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row))
      .execute();
  }

  async get(name: string): Promise<string> {
    return (await this.getKey(name)).value;
  }

  /** The secret with the hosts it may be sent to as an API key. */
  async getKey(name: string): Promise<VaultKey> {
    checkName(name);
    const row = await this.db.selectFrom('secrets').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw new SecretNotFoundError(name);
    const key = this.keys.get(row.key_version);
    if (!key) {
      throw new SecretKeyError(`Secret ${JSON.stringify(name)} was written under key version ${row.key_version}, which this process does not have. Provide that key, or set the secret again.`);
    }
    let value: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(row.iv, 'base64'));
      decipher.setAAD(aad(name));
      decipher.setAuthTag(Buffer.from(row.auth_tag, 'base64'));
      value = Buffer.concat([decipher.update(Buffer.from(row.ciphertext, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      // The crypto error says nothing useful to a user, and nothing of the plaintext is kept.
      throw new SecretDecryptError(name);
    }
    this.redactor.add(value);
    return { value, allowedHosts: hostsOf(row.allowed_hosts_json) };
  }

  /** For the providers' key search: a missing or unreadable secret is no key. */
  readonly lookupKey: VaultKeyLookup = (name) => this.getKey(name).catch(() => undefined);

  async has(name: string): Promise<boolean> {
    checkName(name);
    const row = await this.db.selectFrom('secrets').select('name').where('name', '=', name).executeTakeFirst();
    return row !== undefined;
  }

  /** Names and times only; values never leave the vault through a listing. */
  async list(): Promise<SecretInfo[]> {
    const rows = await this.db.selectFrom('secrets').select(['name', 'key_version', 'created_at', 'updated_at', 'allowed_hosts_json', 'ciphertext']).orderBy('name').execute();
    // GCM keeps the plaintext's length: the ciphertext tells a short value without decrypting it.
    return rows.map(({ allowed_hosts_json, ciphertext, ...info }) => ({
      ...info,
      allowed_hosts: hostsOf(allowed_hosts_json),
      short: Buffer.from(ciphertext, 'base64').length < MIN_REDACTABLE_BYTES,
    }));
  }

  /** True when a secret was deleted, false when there was none of that name. */
  async delete(name: string): Promise<boolean> {
    checkName(name);
    const result = await this.db.deleteFrom('secrets').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * Decrypts every secret once so that the redactor knows all of them — for processes (server,
   * workers) whose logs may see a secret fetched by another process. Returns how many it loaded.
   */
  async primeRedactor(): Promise<number> {
    let loaded = 0;
    for (const { name } of await this.list()) {
      try {
        await this.get(name);
        loaded++;
      } catch {
        // A secret that cannot be opened cannot leak either.
      }
    }
    return loaded;
  }

  redact(text: string): string {
    return this.redactor.redact(text);
  }

  redactValue<T>(value: T): T {
    return this.redactor.redactValue(value);
  }

  formatError(err: unknown): string {
    return this.redactor.formatError(err);
  }
}

function hostsOf(json: string | null): string[] {
  return json ? (JSON.parse(json) as string[]) : [];
}

function parseAllowedHosts(given: readonly string[]): string[] {
  const hosts = new Set<string>();
  for (const text of given) {
    const host = typeof text === 'string' ? parseAllowedHost(text) : undefined;
    if (!host) {
      throw new InvalidInputError('allowed_hosts', `Invalid allowed host ${JSON.stringify(String(text).slice(0, 80))}: write a host name or address with an optional port, e.g. nodeai.lan, 10.0.0.5:8787 or [::1]:8787.`);
    }
    hosts.add(host);
  }
  if (hosts.size > 32) throw new InvalidInputError('allowed_hosts', `At most 32 allowed hosts per secret, got ${hosts.size}.`);
  return [...hosts];
}

function aad(name: string): Buffer {
  return Buffer.from(`nodeai-secret:${name}`, 'utf8');
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
    throw new InvalidInputError(
      'name',
      `Invalid secret name ${JSON.stringify(String(name).slice(0, 80))}: use letters, digits, "_", "." or "-" (at most 128), starting with a letter or "_", e.g. OPENAI_API_KEY.`,
    );
  }
}

/** Where `text` holds half a UTF-16 surrogate pair (no UTF-8 form), or -1. */
function loneSurrogateAt(text: string): number {
  return text.search(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
}
