import type { Kysely, Migration } from 'kysely';

// Every claim of a job takes the next fencing token; a holder's writes (events, metrics,
// checkpoints, the model it registers) carry the token of its claim and are refused once a
// newer claim exists. `attempts` cannot serve: a pause or a shutdown gives its attempt back.
export const jobFencingToken: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('jobs').addColumn('fencing_token', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('jobs').dropColumn('fencing_token').execute();
  },
};
