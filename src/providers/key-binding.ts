// Where a stored API key may be sent. A key from the vault (or the environment) goes to its
// provider's official host, plus the hosts the user allowed for that key when storing it (as
// n8n's credential domains do); any other base_url gets no stored key, only one given for it in
// the node's own settings. Without this, anyone who can edit a workflow could point base_url at
// a listener of theirs and read every vault key from its Authorization header.
import { ProviderError } from './spec.ts';

/** A key as the vault hands it out: the value and the extra hosts it may be sent to. */
export interface VaultKey {
  value: string;
  /** `host` (any port) or `host:port`, lower-case; IPv6 in brackets. */
  allowedHosts: readonly string[];
}

/** Reads a key from the vault; resolves undefined when there is none of that name. */
export type VaultKeyLookup = (name: string) => Promise<VaultKey | undefined>;

/**
 * How a key setting names a vault entry instead of holding a key (the canvas's key picker stores
 * `$secret:OPENAI_API_KEY`): the key it names is bound like any stored key, never sent to a
 * base_url just because the setting points at it.
 */
export const VAULT_REF = '$secret:';

/** The vault entry a setting names (`$secret:NAME`), or undefined when it holds a key itself. */
export function vaultRefName(value: string | null | undefined): string | undefined {
  return value?.startsWith(VAULT_REF) ? value.slice(VAULT_REF.length) : undefined;
}

const HOST = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * One allowed host as the user typed it (`--allow-host`, the API's `allowed_hosts`): a host name
 * or address, with an optional port; a URL is reduced to its host. Undefined when it is not one.
 */
export function parseAllowedHost(text: string): string | undefined {
  let h = text.trim().toLowerCase();
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(h)) {
    try {
      h = new URL(h).host;
    } catch {
      return undefined;
    }
  }
  const m = HOST.exec(h);
  if (!m || (m[1] !== undefined && Number(m[1]) > 65535)) return undefined;
  return h;
}

/** True when `url` is on `host`, or on one of `allowed` (an entry without a port allows any port). */
export function isKeyAllowedFor(url: URL, officialHost: string, allowed: readonly string[]): boolean {
  const host = url.host.toLowerCase();
  const name = url.hostname.toLowerCase();
  if (host === officialHost && url.protocol === 'https:') return true;
  return allowed.some((entry) => entry === host || entry === name);
}

export interface FindKeyOptions {
  /** The key given for this call (the node's api_key setting): sent wherever base_url says. */
  configKey?: string | null;
  getSecret?: VaultKeyLookup;
  env?: NodeJS.ProcessEnv;
  /** Where the key would go; undefined or empty is the provider's own API. */
  baseURL?: string | null;
}

export interface KeyRule {
  provider: string;
  /** Vault and environment name, e.g. OPENAI_API_KEY. */
  secretName: string;
  /** The provider's API host, e.g. api.openai.com. */
  officialHost: string;
  missing: () => Error;
}

export class KeyNotAllowedError extends ProviderError {
  /** `secretName`: the vault or environment name the key was found under. */
  constructor(rule: KeyRule, where: 'vault' | 'environment', url: URL, secretName = rule.secretName) {
    const how =
      where === 'vault'
        ? `give a key for this server in the node's "api_key" setting, or allow the host for the stored key: nodeai secrets set ${secretName} --allow-host ${url.host}`
        : `give a key for this server in the node's "api_key" setting, or store the key in the vault with that host allowed: nodeai secrets set ${secretName} --allow-host ${url.host}`;
    super(
      'api_key_not_allowed',
      `The ${secretName} from the ${where} is not sent to ${url.host}: a stored key goes only to ${rule.officialHost} and the hosts allowed for it when it was stored. To use ${url.host}, ${how}.`,
      rule.provider,
      403,
    );
    this.name = 'KeyNotAllowedError';
  }
}

/** The vault names no key of the name a setting picked (`$secret:NAME`). */
export class PickedKeyMissingError extends ProviderError {
  constructor(rule: KeyRule, secretName: string) {
    super(
      'api_key_missing',
      `The node's "api_key" setting picks the vault key ${JSON.stringify(secretName.slice(0, 128))}, but the vault has none of that name. Store it with "nodeai secrets set ${secretName.slice(0, 128)}", or pick another key.`,
      rule.provider,
      401,
    );
    this.name = 'PickedKeyMissingError';
  }
}

/**
 * The node setting first (a key typed into it goes wherever base_url says; one it picks from the
 * vault by name is bound as any stored key), then the vault, then the environment — a stored key
 * only where it may go.
 */
export async function findBoundKey(rule: KeyRule, options: FindKeyOptions): Promise<string> {
  const fromConfig = options.configKey?.trim();
  const picked = vaultRefName(fromConfig);
  if (fromConfig && picked === undefined) return fromConfig;
  const raw = options.baseURL?.trim();
  let url: URL | undefined;
  try {
    url = raw ? new URL(raw) : undefined;
  } catch {
    throw new ProviderError('invalid_base_url', `base_url ${JSON.stringify(raw!.slice(0, 200))} is not a URL; write it like https://host/v1.`, rule.provider, 400);
  }
  const secretName = picked ?? rule.secretName;
  const fromVault = await options.getSecret?.(secretName);
  const vaultValue = fromVault?.value.trim();
  if (vaultValue) {
    if (!url || isKeyAllowedFor(url, rule.officialHost, fromVault!.allowedHosts)) return vaultValue;
    throw new KeyNotAllowedError(rule, 'vault', url, secretName);
  }
  if (picked !== undefined) throw new PickedKeyMissingError(rule, picked);
  const fromEnv = (options.env ?? process.env)[rule.secretName]?.trim();
  if (fromEnv) {
    if (!url || isKeyAllowedFor(url, rule.officialHost, [])) return fromEnv;
    throw new KeyNotAllowedError(rule, 'environment', url);
  }
  throw rule.missing();
}
