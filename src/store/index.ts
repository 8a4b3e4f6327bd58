export { createStore, defaultDataDir, type Store, type StoreOptions } from './store.ts';
export { openDatabase, migrateToLatest, SQLITE_FILENAME, type DialectName, type DatabaseOptions, type OpenedDatabase } from './database.ts';
export { FileStore, isValidFileId, FILE_ID_PATTERN, DEFAULT_MAX_FILE_BYTES, type FileRecord, type FileSource, type FileStoreOptions, type PutFileOptions, type StagedFile } from './file-store.ts';
export { SecretsVault, loadSecretKey, SECRET_KEY_FILENAME, type SecretInfo, type SecretKey, type LoadedKey } from './secrets-vault.ts';
export { Redactor, REDACTED, MIN_REDACTABLE_BYTES, describeError } from './redact.ts';
export { newId, idPrefix } from './ids.ts';
export { migrations } from './migrations/index.ts';
export * from './errors.ts';
export * from './schema.ts';
