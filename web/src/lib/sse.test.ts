import { describe, expect, it } from 'vitest';
import { SseParser } from './sse.ts';

describe('SseParser', () => {
  it('reads named events with ids, across chunk boundaries and line-ending styles', () => {
    const p = new SseParser();
    const text = 'event: node.started\nid: 1\ndata: {"a":1}\n\n: ping\r\n\r\nevent: run.finished\r\nid: 2\r\ndata: x\r\ndata: y\r\n\r\n';
    const events = [];
    // One character at a time: every split point is a chunk boundary.
    for (const ch of text) events.push(...p.push(ch));
    expect(events).toEqual([
      { event: 'node.started', data: '{"a":1}', id: '1' },
      { event: 'run.finished', data: 'x\ny', id: '2' },
    ]);
    expect(p.lastId).toBe('2');
  });

  it('defaults the event name to message and ignores a block without data', () => {
    const p = new SseParser();
    expect(p.push('event: empty\n\ndata:plain\n\n')).toEqual([{ event: 'message', data: 'plain' }]);
  });
});
