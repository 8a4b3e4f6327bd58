// Every problem the checks can report, with a stable code, where it is (line, field path) and what
// to do. Codes are part of the public contract: the CLI's --json, the API and the UI all show them.

export const errorCodes = [
  // the OpenAI cookbook's seven
  'data_type',
  'missing_messages_list',
  'message_missing_key',
  'message_unrecognized_key',
  'unrecognized_role',
  'missing_content',
  'example_missing_assistant_message',
  // reading the file
  'invalid_json',
  'invalid_csv',
  'invalid_utf8',
  'unsupported_encoding',
  'binary_file',
  'line_too_long',
  // shape of the data set
  'no_training_data',
  'too_few_examples',
  'unknown_format',
  'mixed_formats',
  'role_order',
  'invalid_weight',
  'invalid_tools',
  'invalid_tool_calls',
  'invalid_dpo',
  'unsupported_method',
] as const;

export const warningCodes = [
  'missing_system_message',
  'missing_user_message',
  'over_token_limit',
  'duplicate_example',
  'few_examples',
  'empty_content',
  'no_trainable_messages',
  'identical_preference',
  'fine_tuning_ended',
  'model_shutdown',
] as const;

export type ErrorCode = (typeof errorCodes)[number];
export type WarningCode = (typeof warningCodes)[number];
export type IssueCode = ErrorCode | WarningCode;
export type Severity = 'error' | 'warning';

export interface DatasetIssue {
  severity: Severity;
  code: IssueCode;
  /** 1-based line where the example starts; null for file-wide issues. */
  line: number | null;
  /** Field path inside the example, e.g. `messages[2].role`; null when the whole line is meant. */
  path: string | null;
  /** What is wrong. */
  message: string;
  /** What to do about it. */
  hint: string;
}

const warningSet: ReadonlySet<string> = new Set(warningCodes);
export const severityOf = (code: IssueCode): Severity => (warningSet.has(code) ? 'warning' : 'error');

export function issue(code: IssueCode, line: number | null, path: string | null, message: string, hint: string): DatasetIssue {
  return { severity: severityOf(code), code, line, path, message, hint };
}

/** Receives issues as they are found; the checker's collector keeps counts and the first few. */
export type IssueSink = (issue: DatasetIssue) => void;

/**
 * Counts every issue but keeps only the first `maxDetails` errors and warnings in full, so a
 * million-line file with a broken line in each reports in bounded memory.
 */
export class IssueCollector {
  readonly errors: DatasetIssue[] = [];
  readonly warnings: DatasetIssue[] = [];
  errorCount = 0;
  warningCount = 0;
  readonly counts: Partial<Record<IssueCode, number>> = {};
  private readonly maxDetails: number;

  constructor(maxDetails = 100) {
    this.maxDetails = maxDetails;
  }

  readonly add: IssueSink = (i) => {
    this.counts[i.code] = (this.counts[i.code] ?? 0) + 1;
    if (i.severity === 'error') {
      this.errorCount++;
      if (this.errors.length < this.maxDetails) this.errors.push(i);
    } else {
      this.warningCount++;
      if (this.warnings.length < this.maxDetails) this.warnings.push(i);
    }
  };
}

// The two messages users meet first; their wording is fixed (docs and tests quote them).
export const NO_TRAINING_DATA = 'No training data provided';
export const UNKNOWN_FORMAT = "Training example must have 'messages' or 'prompt'/'completion'";

export const hints = {
  noTrainingData:
    'Add at least 10 examples, one JSON object per line, e.g. {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}',
  unknownFormat:
    'Write each line as {"messages": [...]} (chat), {"prompt": "...", "completion": "..."} (completion) or {"input": {...}, "preferred_output": [...], "non_preferred_output": [...]} (DPO)',
  invalidJson: 'Make the line one complete JSON object; check quotes, commas and brackets',
  encoding: 'Save the file as UTF-8 text (in most editors: "Save with encoding" → UTF-8)',
} as const;
