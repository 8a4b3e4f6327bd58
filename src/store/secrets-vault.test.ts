import { randomBytes } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { InvalidInputError, SecretDecryptError, SecretKeyError, SecretNotFoundError } from './errors.ts';
import { REDACTED, Redactor } from './redact.ts';
import { loadSecretKey, SECRET_KEY_FILENAME } from './secrets-vault.ts';
import { describeEachDialect, tempDir, type TestDb } from './testing.ts';

const SECRET = 'sk-test-4f9a1c2b7d3e8f6a5b0c';

describeEachDialect('secrets vault', (dialect) => {
  let t: TestDb;
  afterEach(async () => t?.cleanup());

  it('stores only ciphertext with a random IV, auth tag and key version, and reads it back', async () => {
    t = await dialect.open();
    const { secrets, db } = t.store;
    await secrets.set('OPENAI_API_KEY', SECRET);
    await secrets.set('OTHER', SECRET);
    expect(await secrets.get('OPENAI_API_KEY')).toBe(SECRET);
    const rows = await db.selectFrom('secrets').selectAll().orderBy('name').execute();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(JSON.stringify(row)).not.toContain(SECRET);
      expect(Buffer.from(row.iv, 'base64')).toHaveLength(12);
      expect(Buffer.from(row.auth_tag, 'base64')).toHaveLength(16);
      expect(row.key_version).toBe(1);
    }
    expect(rows[0].iv).not.toBe(rows[1].iv);
    expect(rows[0].ciphertext).not.toBe(rows[1].ciphertext);
  });

  it('lists names and times only, overwrites, and deletes', async () => {
    t = await dialect.open();
    const { secrets } = t.store;
    await secrets.set('B_KEY', 'value-one');
    await secrets.set('A_KEY', 'value-two');
    await secrets.set('B_KEY', 'value-three');
    const list = await secrets.list();
    expect(list.map((s) => s.name)).toEqual(['A_KEY', 'B_KEY']);
    expect(Object.keys(list[0]).sort()).toEqual(['allowed_hosts', 'created_at', 'key_version', 'name', 'short', 'updated_at']);
    expect(JSON.stringify(list)).not.toMatch(/value-/);
    expect(await secrets.get('B_KEY')).toBe('value-three');
    expect(await secrets.delete('B_KEY')).toBe(true);
    expect(await secrets.delete('B_KEY')).toBe(false);
    await expect(secrets.get('B_KEY')).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(secrets.set('../x', 'v')).rejects.toBeInstanceOf(InvalidInputError);
    await expect(secrets.set('EMPTY', '')).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('detects a tampered ciphertext, tag, or a ciphertext moved to another name, without leaking the value', async () => {
    t = await dialect.open();
    const { secrets, db } = t.store;
    await secrets.set('TOKEN', SECRET);
    const row = await db.selectFrom('secrets').selectAll().where('name', '=', 'TOKEN').executeTakeFirstOrThrow();
    const flipped = Buffer.from(row.ciphertext, 'base64');
    flipped[0] ^= 1;
    await db.updateTable('secrets').set({ ciphertext: flipped.toString('base64') }).where('name', '=', 'TOKEN').execute();
    // A fresh vault (new process) has not seen the value, so nothing of it can be in the error.
    const fresh = await t.reopen();
    const err = await fresh.secrets.get('TOKEN').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretDecryptError);
    expect((err as SecretDecryptError).code).toBe('secret_decrypt_failed');
    expect(String((err as Error).message) + String((err as Error).stack)).not.toContain(SECRET);

    await db.updateTable('secrets').set({ ciphertext: row.ciphertext, auth_tag: Buffer.alloc(16).toString('base64') }).where('name', '=', 'TOKEN').execute();
    await expect(fresh.secrets.get('TOKEN')).rejects.toBeInstanceOf(SecretDecryptError);

    await db.insertInto('secrets').values({ ...row, name: 'STOLEN' }).execute();
    await expect(fresh.secrets.get('STOLEN')).rejects.toBeInstanceOf(SecretDecryptError);
  });

  it('refuses to open secrets under a different key', async () => {
    t = await dialect.open();
    await t.store.secrets.set('TOKEN', SECRET);
    const other = await t.reopen({ secretKeys: [{ version: 1, key: randomBytes(32) }] });
    await expect(other.secrets.get('TOKEN')).rejects.toBeInstanceOf(SecretDecryptError);
    const unknownVersion = await t.reopen({ secretKeys: [{ version: 2, key: randomBytes(32) }] });
    await expect(unknownVersion.secrets.get('TOKEN')).rejects.toBeInstanceOf(SecretKeyError);
    // The process that owns the key file still reads it after a restart.
    const restarted = await t.reopen();
    expect(await restarted.secrets.get('TOKEN')).toBe(SECRET);
  });

  it('redacts a secret from text, nested values and error chains once seen', async () => {
    t = await dialect.open();
    const { secrets } = t.store;
    await secrets.set('TOKEN', SECRET);
    const err = new Error('request failed', { cause: new Error(`401 for key ${SECRET}`) });
    expect(secrets.formatError(err)).toBe(`request failed (caused by: 401 for key ${REDACTED})`);
    const value = { headers: { authorization: `Bearer ${SECRET}` }, list: [SECRET, 3], url: `https://x/?k=${encodeURIComponent(SECRET)}` };
    expect(JSON.stringify(secrets.redactValue(value))).not.toContain(SECRET);
    expect(secrets.redactValue(value).list).toEqual([REDACTED, 3]);
    // A restarted process learns every stored secret up front.
    const restarted = await t.reopen();
    expect(restarted.secrets.redact(SECRET)).toBe(SECRET);
    expect(await restarted.secrets.primeRedactor()).toBe(1);
    expect(restarted.secrets.redact(`x${SECRET}y`)).toBe(`x${REDACTED}y`);
  });
});

it('masks a key typed into a node even when it is half a surrogate pair short of text (no URL form)', () => {
  const redactor = new Redactor();
  const broken = 'sk-typed-\udbd5-0123456789';
  redactor.add(broken);
  expect(redactor.redact(`key ${broken} refused`)).toBe(`key ${REDACTED} refused`);
});

it('generates a 0600 key file once and reuses it', () => {
  const dir = tempDir();
  const first = loadSecretKey(dir, undefined);
  expect(first.source).toBe('file');
  expect(statSync(join(dir, SECRET_KEY_FILENAME)).mode & 0o777).toBe(0o600);
  expect(loadSecretKey(dir, undefined).key.equals(first.key)).toBe(true);
  chmodSync(join(dir, SECRET_KEY_FILENAME), 0o644);
  expect(() => loadSecretKey(dir, undefined)).toThrow(/chmod 600/);
});

it('takes NODEAI_SECRET_KEY as hex or base64 of 32 bytes and never echoes a bad one', () => {
  const dir = tempDir();
  const key = randomBytes(32);
  expect(loadSecretKey(dir, key.toString('hex')).key.equals(key)).toBe(true);
  expect(loadSecretKey(dir, key.toString('base64')).key.equals(key)).toBe(true);
  expect(loadSecretKey(dir, key.toString('base64')).source).toBe('env');
  const bad = 'my-password-123';
  const err = (() => {
    try {
      loadSecretKey(dir, bad);
    } catch (e) {
      return e as SecretKeyError;
    }
  })();
  expect(err).toBeInstanceOf(SecretKeyError);
  expect(err!.code).toBe('secret_key_invalid');
  expect(err!.message).not.toContain(bad);
  expect(() => loadSecretKey(dir, randomBytes(16).toString('hex'))).toThrow(SecretKeyError);
});
