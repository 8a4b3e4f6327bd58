// A plain data table of the screens: column headers, an actions column named for screen readers,
// a line that says so when there are no rows, and the rows' Delete button.
import type { ReactNode } from 'react';

export function Table({ columns, actions, empty, rows, children }: { columns: string[]; actions?: boolean; empty: string; rows: number; children: ReactNode }) {
  return (
    <table className="table">
      <thead>
        <tr>
          {columns.map((c) => (
            <th scope="col" key={c}>
              {c}
            </th>
          ))}
          {actions && (
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>
        {rows === 0 && (
          <tr>
            <td colSpan={columns.length + (actions ? 1 : 0)} className="hint">
              {empty}
            </td>
          </tr>
        )}
        {children}
      </tbody>
    </table>
  );
}

/** A row's Delete action, named after the row's thing for screen readers (every row has one). */
export function DeleteButton({ what, onDelete }: { what: string; onDelete: () => void }) {
  return (
    <button className="danger" onClick={onDelete} aria-label={`Delete ${what}`}>
      Delete
    </button>
  );
}
