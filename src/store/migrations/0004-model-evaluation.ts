import type { Kysely, Migration } from 'kysely';

// A fine-tuned model's automatic evaluation (base vs fine-tuned on the validation split), as the
// JSON report the canvas's compare view and GET /api/v1/models/:id/evaluation read.
export const modelEvaluation: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('models').addColumn('evaluation_json', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('models').dropColumn('evaluation_json').execute();
  },
};
