// A node's settings form, generated from the JSON Schema of its zod config (the node registry's
// single source of truth), with two fields made friendlier: File Loader's file_id gets an upload
// button, Chat's finetuned_model a dropdown of the registered models.
import { useState } from 'react';
import type { Api, ApiModel, JsonSchema, NodeType } from './api.ts';

const LONG_TEXT = new Set(['text', 'prompt', 'system_prompt']);

/** The kinds a field can take: a choice, a switch, a number (maybe also "auto"), or text. */
function kindOf(s: JsonSchema): { kind: 'enum' | 'boolean' | 'number' | 'text'; options?: unknown[]; auto?: boolean } {
  if (s.enum) return { kind: 'enum', options: s.enum };
  const variants = s.anyOf ?? [s];
  const types = variants.flatMap((v) => (Array.isArray(v.type) ? v.type : v.type ? [v.type] : []));
  const auto = variants.some((v) => v.const === 'auto' || v.enum?.includes('auto'));
  if (types.includes('boolean')) return { kind: 'boolean' };
  if (types.includes('number') || types.includes('integer')) return { kind: 'number', auto };
  return { kind: 'text' };
}

function label(key: string): string {
  return key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

interface Props {
  api: Api;
  nodeType: NodeType;
  config: Record<string, unknown>;
  models: ApiModel[];
  /** Given a change to apply to the node's config as it is then (an upload ends after other edits). */
  onChange: (update: (config: Record<string, unknown>) => Record<string, unknown>) => void;
}

export function SettingsForm({ api, nodeType, config, models, onChange }: Props) {
  const [uploading, setUploading] = useState<string | null>(null);
  // What is typed into number fields, as typed: "0." on the way to "0.5" must not turn into "0".
  const [typed, setTyped] = useState<Record<string, string>>({});
  const props = nodeType.configSchema.properties ?? {};
  const set = (key: string, value: unknown) =>
    onChange((current) => {
      const next = { ...current };
      if (value === undefined || value === '') delete next[key];
      else next[key] = value;
      return next;
    });

  return (
    <form className="settings" onSubmit={(e) => e.preventDefault()}>
      <p className="hint">{nodeType.description}</p>
      {Object.entries(props).map(([key, schema]) => {
        const id = `field-${key}`;
        const value = config[key];
        const { kind, options, auto } = kindOf(schema);
        const placeholder = schema.default !== undefined ? String(schema.default) : auto ? 'auto' : '';
        let input;
        if (nodeType.type === 'file_loader' && key === 'file_id') {
          input = (
            <div className="upload">
              <input id={id} name={key} value={String(value ?? '')} placeholder="file-…" onChange={(e) => set(key, e.target.value.trim())} />
              <label className="button">
                Upload…
                <input
                  type="file"
                  accept=".jsonl,.json,.csv,.tsv"
                  data-testid="upload"
                  hidden
                  onChange={async (e) => {
                    const file = e.target.files?.[0];
                    if (!file) return;
                    setUploading(`Uploading ${file.name}…`);
                    try {
                      const stored = await api.upload(file);
                      onChange((current) => ({ ...current, file_id: stored.id, path: undefined }));
                      e.target.value = '';
                      setUploading(`${stored.filename} · ${stored.bytes.toLocaleString()} bytes`);
                    } catch (err) {
                      setUploading(`Upload failed: ${(err as Error).message}`);
                    }
                  }}
                />
              </label>
              {uploading && <small>{uploading}</small>}
            </div>
          );
        } else if (nodeType.type === 'chat' && key === 'finetuned_model') {
          input = (
            <select id={id} name={key} value={String(value ?? '')} onChange={(e) => set(key, e.target.value)}>
              <option value="">{models.length ? '(the model wired from Fine-Tune)' : '(no fine-tuned models yet)'}</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name ? `${m.name} (${m.id})` : m.id}
                </option>
              ))}
            </select>
          );
        } else if (kind === 'enum') {
          input = (
            <select id={id} name={key} value={String(value ?? schema.default ?? '')} onChange={(e) => set(key, e.target.value)}>
              {options!.map((o) => (
                <option key={String(o)} value={String(o)}>
                  {String(o)}
                </option>
              ))}
            </select>
          );
        } else if (kind === 'boolean') {
          input = <input id={id} name={key} type="checkbox" checked={Boolean(value ?? schema.default)} onChange={(e) => set(key, e.target.checked)} />;
        } else if (kind === 'number') {
          input = (
            <input
              id={id}
              name={key}
              inputMode="decimal"
              value={typed[key] ?? (value === undefined ? '' : String(value))}
              placeholder={placeholder}
              onChange={(e) => {
                const raw = e.target.value.trim();
                setTyped((t) => ({ ...t, [key]: e.target.value }));
                if (raw === '') return set(key, undefined);
                if (auto && raw === 'auto') return set(key, 'auto');
                const n = Number(raw);
                set(key, Number.isFinite(n) ? n : raw);
              }}
            />
          );
        } else if (LONG_TEXT.has(key)) {
          input = <textarea id={id} name={key} rows={key === 'text' ? 8 : 3} value={String(value ?? '')} placeholder={placeholder} onChange={(e) => set(key, e.target.value)} />;
        } else {
          input = <input id={id} name={key} type={key === 'api_key' ? 'password' : 'text'} value={String(value ?? '')} placeholder={placeholder} onChange={(e) => set(key, e.target.value)} />;
        }
        return (
          <div className="field" key={key}>
            <label htmlFor={id} title={schema.description}>
              {label(key)}
            </label>
            {input}
            {schema.description && <small>{schema.description}</small>}
          </div>
        );
      })}
    </form>
  );
}
