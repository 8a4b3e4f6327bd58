// Text from stored data (file names, purposes, job messages, model names) goes to a terminal
// only without control characters: an escape sequence stored by a client could otherwise
// recolour, retitle or rewrite the user's terminal.

/** C0 and C1 controls and DEL, shown as visible escapes (`\x1b`); tabs become spaces. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\t/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
