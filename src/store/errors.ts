import { NodeAIError, statusOf, type HttpStatus } from '../nodeai-error.ts';

// A file ID the store cannot hold is as good as a missing file (404); storage's own failures are 500.
const STATUS: Record<string, HttpStatus> = {
  invalid_file_id: 404,
  file_not_found: 404,
  secret_not_found: 404,
  file_too_large: 413,
  invalid_input: 400,
  file_source_invalid: 400,
};
const PARAM: Record<string, string> = { invalid_file_id: 'file_id', file_not_found: 'file_id' };

/**
 * Base of every storage failure. `code` is stable across releases so callers (CLI, server,
 * nodes) can branch on it; the message says what was wrong, where, and what to do.
 */
export class StoreError extends NodeAIError {
  constructor(code: string, message: string, options?: { cause?: unknown; param?: string }) {
    super(code, message, { status: statusOf(code, STATUS), param: options?.param ?? PARAM[code] ?? null, cause: options?.cause });
    this.name = 'StoreError';
  }
}

export class InvalidFileIdError extends StoreError {
  constructor(readonly fileId: string) {
    // The raw id is shown JSON-quoted and cut short: it comes from users and may be hostile.
    super(
      'invalid_file_id',
      `Invalid file ID ${JSON.stringify(fileId.slice(0, 80))}: a file ID looks like "file-" followed by 24 letters or digits. Use an ID printed by "nodeai files upload" or "nodeai files list".`,
    );
    this.name = 'InvalidFileIdError';
  }
}

export class FileNotFoundError extends StoreError {
  constructor(readonly fileId: string) {
    super('file_not_found', `No file with ID ${fileId} in this store. Run "nodeai files list" to see the uploaded files.`);
    this.name = 'FileNotFoundError';
  }
}

export class FileTooLargeError extends StoreError {
  constructor(
    readonly filename: string,
    readonly limitBytes: number,
  ) {
    super(
      'file_too_large',
      `Upload ${JSON.stringify(filename)} is larger than the ${limitBytes}-byte limit; nothing was stored. Split the file or raise the limit (NODEAI_MAX_FILE_BYTES).`,
    );
    this.name = 'FileTooLargeError';
  }
}

export class FileWriteError extends StoreError {
  constructor(
    readonly filename: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const code = (cause as { code?: unknown } | null)?.code;
    const hint = code === 'ENOSPC' ? ' The disk is full: free some space and upload again.' : ' Nothing was stored; upload again.';
    super('upload_failed', `Upload ${JSON.stringify(filename)} failed: ${reason}.${hint}`, { cause });
    this.name = 'FileWriteError';
  }
}

export class FileSourceError extends StoreError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('file_source_invalid', `Cannot upload ${path}: ${reason}. Check the path and try again.`);
    this.name = 'FileSourceError';
  }
}

export class InvalidInputError extends StoreError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('invalid_input', message, { param: field });
    this.name = 'InvalidInputError';
  }
}

export class SecretNotFoundError extends StoreError {
  constructor(readonly secretName: string) {
    super('secret_not_found', `No secret named ${JSON.stringify(secretName)}. Set it with "nodeai secrets set ${secretName}".`);
    this.name = 'SecretNotFoundError';
  }
}

/** The stored ciphertext does not open with the current key: tampered, or a different key. */
export class SecretDecryptError extends StoreError {
  constructor(readonly secretName: string) {
    super(
      'secret_decrypt_failed',
      `Secret ${JSON.stringify(secretName)} cannot be decrypted: it was changed in the database or was written under another key. Check NODEAI_SECRET_KEY (or the key file in the data directory), or set the secret again.`,
    );
    this.name = 'SecretDecryptError';
  }
}

export class SecretKeyError extends StoreError {
  constructor(message: string) {
    super('secret_key_invalid', message);
    this.name = 'SecretKeyError';
  }
}

export class MigrationError extends StoreError {
  constructor(
    readonly migration: string | undefined,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'migration_failed',
      `Database migration ${migration ?? '(unknown)'} failed: ${reason}. The database was left at the last migration that succeeded; fix the cause and start again.`,
      { cause },
    );
    this.name = 'MigrationError';
  }
}
