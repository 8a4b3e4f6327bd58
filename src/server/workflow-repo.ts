// The `workflows` table has no repository below the server yet; this one is small and owned here.
import type { Kysely } from 'kysely';
import { newId, idPrefix, type Database, type WorkflowRow } from '../store/index.ts';
import type { Workflow } from '../engine/index.ts';

export interface StoredWorkflow {
  id: string;
  object: 'workflow';
  name: string;
  definition: Workflow;
  created_at: number;
  updated_at: number;
}

function toApi(row: WorkflowRow): StoredWorkflow {
  return {
    id: row.id,
    object: 'workflow',
    name: row.name,
    definition: JSON.parse(row.definition_json) as Workflow,
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
  };
}

export class WorkflowRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async create(definition: Workflow, id = newId(idPrefix.workflow)): Promise<StoredWorkflow> {
    const now = Date.now();
    const row: WorkflowRow = { id, name: definition.name, definition_json: JSON.stringify(definition), created_at: now, updated_at: now };
    await this.db.insertInto('workflows').values(row).execute();
    return toApi(row);
  }

  async get(id: string): Promise<StoredWorkflow | undefined> {
    const row = await this.db.selectFrom('workflows').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toApi(row) : undefined;
  }

  /** Newest change first. */
  async list(options: { limit?: number } = {}): Promise<StoredWorkflow[]> {
    const rows = await this.db
      .selectFrom('workflows')
      .selectAll()
      .orderBy('updated_at', 'desc')
      .orderBy('id')
      .limit(options.limit ?? 100)
      .execute();
    return rows.map(toApi);
  }

  async update(id: string, definition: Workflow): Promise<StoredWorkflow | undefined> {
    const now = Date.now();
    const result = await this.db
      .updateTable('workflows')
      .set({ name: definition.name, definition_json: JSON.stringify(definition), updated_at: now })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.get(id);
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('workflows').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
