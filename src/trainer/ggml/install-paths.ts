// How messages about the installation (ggml libraries, the BLAS build) name its files: relative to
// the project's root or from `node_modules/` on, never as the server's absolute paths, which job
// events and API errors must not show.
import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root: the folder holding package.json, build/ and (usually) node_modules/. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** `text` with the project's root and any folder above a `node_modules/` taken off the paths in it. */
export function withoutInstallRoot(text: string): string {
  return text
    .split(PROJECT_ROOT + sep)
    .join('')
    .replace(/(?:\/[^\s/()'"`]+)+\/(node_modules\/)/g, '$1');
}
