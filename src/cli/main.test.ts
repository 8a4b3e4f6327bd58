import { describe, expect, it, vi } from 'vitest';
import { main } from './main.ts';

describe('nodeai main', () => {
  it('exits 2 with the usage on an unknown command', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['no-such-command'])).toBe(2);
    expect(err.mock.calls[0][0]).toMatch(/unknown command 'no-such-command'/);
    err.mockRestore();
  });

  it('prints the command list on --help and exits 0', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await main(['--help'])).toBe(0);
    expect(log.mock.calls[0][0]).toMatch(/data\s+check and convert/);
    log.mockRestore();
  });
});
