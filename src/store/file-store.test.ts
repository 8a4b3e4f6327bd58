import { createHash } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, expect, it } from 'vitest';
import { FileNotFoundError, FileSourceError, FileTooLargeError, FileWriteError, InvalidFileIdError } from './errors.ts';
import { FILE_ID_PATTERN, isValidFileId } from './file-store.ts';
import { describeEachDialect, tempDir, type TestDb } from './testing.ts';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** A real file sink that accepts `okBytes` and then fails the way a full disk does. */
function fullDiskAfter(okBytes: number) {
  return (path: string): Writable => {
    const real = createWriteStream(path, { flags: 'wx' });
    let written = 0;
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        if (written + chunk.length > okBytes) {
          const err = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          real.end(() => done(err));
          return;
        }
        written += chunk.length;
        real.write(chunk, done);
      },
      final(done) {
        real.end(done);
      },
    });
  };
}

function chunks(n: number, size: number): Readable {
  let i = 0;
  return new Readable({
    read() {
      this.push(i++ < n ? Buffer.alloc(size, 97) : null);
    },
  });
}

describeEachDialect('file store', (dialect) => {
  let t: TestDb;
  afterEach(async () => t?.cleanup());
  const filesDir = () => join(t.dataDir, 'files');

  it('streams an upload to disk with its size and sha256, then lists, opens and deletes it', async () => {
    t = await dialect.open();
    const body = '{"messages":[]}\n'.repeat(1000);
    const rec = await t.store.files.put(Readable.from([body.slice(0, 5000), body.slice(5000)]), { filename: 'train.jsonl' });
    expect(rec.id).toMatch(FILE_ID_PATTERN);
    expect(rec).toMatchObject({ filename: 'train.jsonl', purpose: 'fine-tune', bytes: body.length, sha256: sha(body) });
    expect(await t.store.files.get(rec.id)).toEqual(rec);
    expect(await t.store.files.list()).toEqual([rec]);
    expect(await t.store.files.list({ purpose: 'batch' })).toEqual([]);
    expect(await text(await t.store.files.open(rec.id))).toBe(body);
    expect(readFileSync(await t.store.files.path(rec.id), 'utf8')).toBe(body);
    expect(await t.store.files.delete(rec.id)).toBe(true);
    expect(await t.store.files.delete(rec.id)).toBe(false);
    await expect(t.store.files.get(rec.id)).rejects.toBeInstanceOf(FileNotFoundError);
    expect(readdirSync(filesDir())).toEqual([]);
  });

  it('uploads from a path, naming the file after it', async () => {
    t = await dialect.open();
    const src = join(tempDir(), 'data.csv');
    writeFileSync(src, 'a,b\n1,2\n');
    const rec = await t.store.files.put(src, { purpose: 'user_data' });
    expect(rec).toMatchObject({ filename: 'data.csv', bytes: 8, sha256: sha('a,b\n1,2\n'), purpose: 'user_data' });
    await expect(t.store.files.put(join(src, '..', 'missing.csv'))).rejects.toBeInstanceOf(FileSourceError);
  });

  it('refuses an upload over the limit and keeps nothing of it', async () => {
    t = await dialect.open({ maxFileBytes: 10_000 });
    const err = await t.store.files.put(chunks(5, 4096), { filename: 'big.jsonl' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileTooLargeError);
    expect((err as FileTooLargeError).code).toBe('file_too_large');
    expect((err as Error).message).toContain('10000-byte limit');
    expect(await t.store.files.list()).toEqual([]);
    expect(readdirSync(filesDir())).toEqual([]);
    // Exactly at the limit is allowed; a per-upload limit overrides the store's.
    await expect(t.store.files.put(chunks(1, 10_000))).resolves.toMatchObject({ bytes: 10_000 });
    await expect(t.store.files.put(chunks(1, 100), { maxBytes: 99 })).rejects.toBeInstanceOf(FileTooLargeError);
  });

  it('leaves no row and no partial file when the disk fills up halfway', async () => {
    t = await dialect.open({ openWriteStream: fullDiskAfter(8192) });
    const err = await t.store.files.put(chunks(10, 4096), { filename: 'train.jsonl' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    expect((err as FileWriteError).code).toBe('upload_failed');
    expect((err as Error).message).toMatch(/disk is full/);
    expect(await t.store.files.list()).toEqual([]);
    expect(readdirSync(filesDir())).toEqual([]);
  });

  it('leaves nothing when the source stream breaks halfway', async () => {
    t = await dialect.open();
    let n = 0;
    const broken = new Readable({
      read() {
        if (n++ < 3) this.push(Buffer.alloc(1000));
        else this.destroy(new Error('connection reset by peer'));
      },
    });
    await expect(t.store.files.put(broken)).rejects.toThrow(/connection reset/);
    expect(await t.store.files.list()).toEqual([]);
    expect(readdirSync(filesDir())).toEqual([]);
  });

  it('rejects IDs that could escape the store before touching the disk', async () => {
    t = await dialect.open();
    writeFileSync(join(t.dataDir, 'nodeai-secret.txt'), 'do not serve');
    for (const bad of ['../nodeai-secret.txt', 'file-../../etc/passwd', `file-${'a'.repeat(23)}/`, `file-${'a'.repeat(24)}\0`, '/etc/passwd', `file-${'a'.repeat(25)}`, '']) {
      expect(isValidFileId(bad)).toBe(false);
      await expect(t.store.files.get(bad)).rejects.toBeInstanceOf(InvalidFileIdError);
      await expect(t.store.files.open(bad)).rejects.toBeInstanceOf(InvalidFileIdError);
      await expect(t.store.files.delete(bad)).rejects.toBeInstanceOf(InvalidFileIdError);
    }
    expect(readFileSync(join(t.dataDir, 'nodeai-secret.txt'), 'utf8')).toBe('do not serve');
  });

  it('keeps only the base name of a hostile filename as metadata', async () => {
    t = await dialect.open();
    const rec = await t.store.files.put(Readable.from(['x']), { filename: '../../etc/\u0007passwd' });
    expect(rec.filename).toBe('passwd');
    expect(readdirSync(filesDir())).toEqual([rec.id]);
  });
});
