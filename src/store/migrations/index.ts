import type { Migration } from 'kysely';
import { initial } from './0001-initial.ts';
import { secretAllowedHosts } from './0002-secret-allowed-hosts.ts';
import { jobFencingToken } from './0003-job-fencing-token.ts';
import { modelEvaluation } from './0004-model-evaluation.ts';
import { modelListColumns } from './0005-model-list-columns.ts';

/**
 * Every migration, in order. Names sort lexically (Kysely runs them by name), so a new one is
 * `0002-…` in its own file, added here; a released migration is never edited.
 */
export const migrations: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-secret-allowed-hosts': secretAllowedHosts,
  '0003-job-fencing-token': jobFencingToken,
  '0004-model-evaluation': modelEvaluation,
  '0005-model-list-columns': modelListColumns,
};
