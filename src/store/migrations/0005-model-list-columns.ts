import type { Kysely, Migration } from 'kysely';

// What the model list shows, kept beside the row so listing reads no file and parses no report:
// the model file's size in bytes (taken at registration) and the evaluation's summary (models,
// per-model totals, example count) apart from the full report, which can hold hundreds of answers.
export const modelListColumns: Migration = {
  async up(db: Kysely<any>) {
    // One column per statement: SQLite's ALTER TABLE adds only one at a time.
    await db.schema.alterTable('models').addColumn('model_bytes', 'bigint').execute();
    await db.schema.alterTable('models').addColumn('evaluation_summary_json', 'text').execute();
    // The summary of every report stored before, in the shape the registry writes. Sizes are left
    // null: a stored path may be relative to a data directory this migration does not know, so
    // the registry takes each one from its file the first time it lists that model.
    const rows: { id: string; evaluation_json: string }[] = await db.selectFrom('models').select(['id', 'evaluation_json']).where('evaluation_json', 'is not', null).execute();
    for (const row of rows) {
      const report = JSON.parse(row.evaluation_json) as { models: string[]; summary: unknown; examples: unknown[] };
      const summary = { models: report.models, summary: report.summary, examples: report.examples.length };
      await db.updateTable('models').set({ evaluation_summary_json: JSON.stringify(summary) }).where('id', '=', row.id).execute();
    }
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('models').dropColumn('evaluation_summary_json').execute();
    await db.schema.alterTable('models').dropColumn('model_bytes').execute();
  },
};
