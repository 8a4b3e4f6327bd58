// A node's settings form, generated from the JSON Schema of its zod config (the node registry's
// single source of truth): the fields that matter for the chosen provider, everyday ones first
// and the rest under "Advanced", each labelled in words and showing its own problem. Some fields
// get a better control: the File Loader's file an upload button, keys a picker of stored secrets
// (a node never holds a key, only `$secret:NAME`), models a list of what can be used.
import { useState, type ReactNode } from 'react';
import type { Api, ApiModel, ApiSecret, CatalogModel, JsonSchema, NodeType } from './api.ts';
import { fieldLabel, SECRET_FIELDS, visibleFields } from './lib/fields.ts';
import { catalogFileSize } from './lib/model-facts.ts';
import { SECRET_REF } from './lib/workflow-doc.ts';

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

interface Props {
  api: Api;
  nodeType: NodeType;
  config: Record<string, unknown>;
  models: ApiModel[];
  secrets: ApiSecret[];
  /** Base models from the server's catalog; null: it has none, the field is free text. */
  catalog: CatalogModel[] | null;
  /** Problems by field, in plain words. */
  errors: Record<string, string>;
  /** Given a change to apply to the node's config as it is then (an upload ends after other edits). */
  onChange: (update: (config: Record<string, unknown>) => Record<string, unknown>) => void;
  onManageSecrets: () => void;
}

export function SettingsForm({ api, nodeType, config, models, secrets, catalog, errors, onChange, onManageSecrets }: Props) {
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
  const sections = visibleFields(nodeType.type, Object.keys(props), config);

  const field = (key: string): ReactNode => {
    const schema = props[key];
    const id = `field-${key}`;
    const value = config[key];
    const error = errors[key];
    const { kind, options, auto } = kindOf(schema);
    const placeholder = schema.default !== undefined ? String(schema.default) : auto ? 'auto' : '';
    const common = { id, name: key, 'aria-invalid': error ? true : undefined, 'aria-describedby': error ? `${id}-error` : undefined };
    let input: ReactNode;
    if (nodeType.type === 'file_loader' && key === 'file_id') {
      input = (
        <div className="upload">
          <input {...common} value={String(value ?? '')} placeholder="file-…" onChange={(e) => set(key, e.target.value.trim())} />
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
          {uploading && <small className="upload-state">{uploading}</small>}
        </div>
      );
    } else if (SECRET_FIELDS.has(key)) {
      const ref = typeof value === 'string' && value.startsWith(SECRET_REF) ? value.slice(SECRET_REF.length) : '';
      input = (
        <div className="upload">
          <select {...common} value={ref} onChange={(e) => set(key, e.target.value ? SECRET_REF + e.target.value : undefined)}>
            <option value="">(the provider's default secret, e.g. OPENAI_API_KEY)</option>
            {secrets.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
            {ref && !secrets.some((s) => s.name === ref) && <option value={ref}>{ref} (not stored)</option>}
          </select>
          <button type="button" onClick={onManageSecrets}>
            Keys…
          </button>
        </div>
      );
    } else if (nodeType.type === 'chat' && key === 'finetuned_model') {
      input = (
        <select {...common} value={String(value ?? '')} onChange={(e) => set(key, e.target.value)}>
          <option value="">{models.length ? '(the model wired from Fine-Tune)' : '(no fine-tuned models yet)'}</option>
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name ? `${m.name} (${m.id})` : m.id}
            </option>
          ))}
        </select>
      );
    } else if (nodeType.type === 'finetune' && key === 'base_model' && catalog && (config.provider ?? 'local') === 'local') {
      const current = String(value ?? schema.default ?? '');
      const known = current === 'nodeai-tiny' || catalog.some((m) => m.uri === current) || models.some((m) => m.id === current);
      const chosen = catalog.find((m) => m.uri === current);
      input = (
        <select {...common} value={current} onChange={(e) => set(key, e.target.value)} aria-describedby={chosen ? `${id}-about` : common['aria-describedby']}>
          {!known && <option value={current}>{current}</option>}
          <option value="nodeai-tiny">nodeai-tiny (built in, trains in seconds)</option>
          {catalog.map((m) => (
            <option key={m.id} value={m.uri}>
              {m.name}
              {m.parameters ? ` · ${formatCount(m.parameters)} parameters` : ''}
              {m.downloaded ? ' · downloaded' : ' · downloads on first use'}
            </option>
          ))}
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name ?? m.id} (fine-tuned)
            </option>
          ))}
        </select>
      );
      if (chosen) {
        const file = chosen.files?.find((f) => f.uri === chosen.uri);
        const size = file && catalogFileSize(file);
        input = (
          <>
            {input}
            <small id={`${id}-about`}>
              {size && <span title={size.title}>{`${size.text} · `}</span>}
              {[chosen.license && `license ${chosen.license}`, chosen.context_length && `context ${chosen.context_length.toLocaleString()} tokens`, chosen.est_train_tok_s && `about ${chosen.est_train_tok_s.toLocaleString()} tokens/s to train here`, chosen.est_peak_rss_mb && `about ${Math.round(chosen.est_peak_rss_mb).toLocaleString()} MB of memory`, chosen.benchmark && `measured ${chosen.benchmark.date.slice(0, 10)}: ${chosen.benchmark.setup}`].filter(Boolean).join(' · ')}
            </small>
          </>
        );
      }
    } else if (kind === 'enum') {
      input = (
        <select {...common} value={String(value ?? schema.default ?? '')} onChange={(e) => set(key, e.target.value)}>
          {options!.map((o) => (
            <option key={String(o)} value={String(o)}>
              {String(o)}
            </option>
          ))}
        </select>
      );
    } else if (kind === 'boolean') {
      input = <input {...common} type="checkbox" checked={Boolean(value ?? schema.default)} onChange={(e) => set(key, e.target.checked)} />;
    } else if (kind === 'number') {
      input = (
        <input
          {...common}
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
      input = <textarea {...common} rows={key === 'text' ? 8 : 3} value={String(value ?? '')} placeholder={placeholder} onChange={(e) => set(key, e.target.value)} />;
    } else {
      input = <input {...common} type="text" value={String(value ?? '')} placeholder={placeholder} onChange={(e) => set(key, e.target.value)} />;
    }
    return (
      <div className={`field ${kind === 'boolean' ? 'switch' : ''} ${error ? 'invalid' : ''}`} key={key}>
        <label htmlFor={id}>{fieldLabel(key)}</label>
        {input}
        {error && (
          <small className="field-error" id={`${id}-error`} role="status">
            {fieldLabel(key)} {error}.
          </small>
        )}
        {schema.description && <small>{schema.description}</small>}
      </div>
    );
  };

  return (
    <form className="settings" onSubmit={(e) => e.preventDefault()}>
      <p className="hint">{nodeType.description}</p>
      {sections.basic.map(field)}
      {sections.advanced.length > 0 && (
        <details className="advanced" open={sections.advanced.some((k) => errors[k])}>
          <summary>Advanced</summary>
          {sections.advanced.map(field)}
        </details>
      )}
    </form>
  );
}

function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${Math.round(n / 1e6)}M` : String(n);
}
