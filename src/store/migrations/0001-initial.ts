import { sql, type Kysely, type Migration } from 'kysely';

// Written once for both dialects: only types both understand (text, integer, bigint,
// double precision) and constraints both enforce. Never edit a released migration; add one.

const inList = (values: readonly string[]) => sql.join(values.map((v) => sql.lit(v)));

const RUN_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'];
const NODE_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'skipped'];
const JOB_STATUSES = ['validating_files', 'queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];

export const initial: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('files')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('filename', 'text', (c) => c.notNull())
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('files_created_at_idx').on('files').column('created_at').execute();

    await db.schema
      .createTable('secrets')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('iv', 'text', (c) => c.notNull())
      .addColumn('auth_tag', 'text', (c) => c.notNull())
      .addColumn('key_version', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('workflows')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('definition_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      // No foreign key: a run outlives an edited or deleted saved workflow (it keeps a snapshot).
      .addColumn('workflow_id', 'text')
      .addColumn('workflow_name', 'text', (c) => c.notNull())
      .addColumn('workflow_json', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('waiting_node_id', 'text')
      .addColumn('waiting_json', 'text')
      .addColumn('waiting_job_id', 'text')
      .addColumn('error_json', 'text')
      .addColumn('owner', 'text')
      .addColumn('heartbeat_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addCheckConstraint('runs_status_check', sql`status in (${inList(RUN_STATUSES)})`)
      .execute();
    await db.schema.createIndex('runs_status_idx').on('runs').columns(['status', 'created_at']).execute();
    await db.schema.createIndex('runs_waiting_job_idx').on('runs').column('waiting_job_id').execute();
    await db.schema.createIndex('runs_workflow_idx').on('runs').column('workflow_id').execute();

    await db.schema
      .createTable('node_results')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('node_type', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('outputs_json', 'text')
      .addColumn('error_json', 'text')
      .addColumn('wait_state_json', 'text')
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .addColumn('duration_ms', 'double precision')
      .addPrimaryKeyConstraint('node_results_pk', ['run_id', 'node_id'])
      .addCheckConstraint('node_results_status_check', sql`status in (${inList(NODE_STATUSES)})`)
      .execute();

    await db.schema
      .createTable('jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('provider_job_id', 'text')
      .addColumn('method', 'text', (c) => c.notNull().defaultTo('supervised'))
      .addColumn('base_model', 'text', (c) => c.notNull())
      .addColumn('fine_tuned_model', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('training_file', 'text', (c) => c.notNull())
      .addColumn('validation_file', 'text')
      .addColumn('hyperparameters_json', 'text', (c) => c.notNull())
      .addColumn('suffix', 'text')
      .addColumn('seed', 'bigint')
      .addColumn('metadata_json', 'text')
      .addColumn('result_files_json', 'text')
      .addColumn('trained_tokens', 'bigint')
      .addColumn('error_json', 'text')
      .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('run_after', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(3))
      .addColumn('locked_by', 'text')
      .addColumn('locked_until', 'bigint')
      .addColumn('heartbeat_at', 'bigint')
      .addColumn('cancel_requested_at', 'bigint')
      .addColumn('estimated_finish', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addCheckConstraint('jobs_status_check', sql`status in (${inList(JOB_STATUSES)})`)
      .execute();
    // The queue's claim query: next runnable job by status, priority, then due time.
    await db.schema.createIndex('jobs_queue_idx').on('jobs').columns(['status', 'priority', 'run_after']).execute();
    await db.schema.createIndex('jobs_created_at_idx').on('jobs').column('created_at').execute();
    await db.schema.createIndex('jobs_provider_job_idx').on('jobs').columns(['provider', 'provider_job_id']).execute();

    await db.schema
      .createTable('job_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('data_json', 'text')
      .addUniqueConstraint('job_events_job_seq_unique', ['job_id', 'seq'])
      .execute();

    await db.schema
      .createTable('job_checkpoints')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
      .addColumn('step_number', 'bigint', (c) => c.notNull())
      .addColumn('fine_tuned_model_checkpoint', 'text', (c) => c.notNull())
      .addColumn('metrics_json', 'text')
      .addColumn('path', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('job_checkpoints_job_step_unique', ['job_id', 'step_number'])
      .execute();

    await db.schema
      .createTable('models')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('base_model', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text', (c) => c.unique().references('jobs.id').onDelete('set null'))
      .addColumn('training_examples', 'bigint')
      .addColumn('epochs', 'integer')
      .addColumn('metrics_json', 'text')
      .addColumn('files_json', 'text')
      .addColumn('path', 'text')
      .addColumn('usage_count', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_used_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<any>) {
    for (const table of ['models', 'job_checkpoints', 'job_events', 'jobs', 'node_results', 'runs', 'workflows', 'secrets', 'files']) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};
