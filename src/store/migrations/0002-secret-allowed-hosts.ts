import type { Kysely, Migration } from 'kysely';

// The hosts besides its provider's own that a stored key may be sent to (a JSON array of
// `host` or `host:port`); null allows none.
export const secretAllowedHosts: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('secrets').addColumn('allowed_hosts_json', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('secrets').dropColumn('allowed_hosts_json').execute();
  },
};
