import { describe, expect, it } from 'vitest';
import { LagMonitor } from './monitor.js';

describe('LagMonitor', () => {
  it('asks every member, bounds each answer by the timeout, and keeps history between samples', async () => {
    let flush = 0x3000000;
    const asked: string[] = [];
    const monitor = new LagMonitor(
      [{ name: 'p', host: '127.0.0.1', port: 1 }, { name: 'hung', host: '127.0.0.1', port: 2 }, { name: 'bad', host: '127.0.0.1', port: 3 }],
      async (member) => {
        asked.push(member.name!);
        if (member.name === 'hung') return new Promise(() => undefined);
        if (member.name === 'bad') return { role: 'leader' };
        return { role: 'primary', member: 'p', timeline: 1, flushLsn: `0/${(flush += 0x100000).toString(16)}`, insertLsn: '0/1' };
      },
      { timeoutMs: 50, now: (() => { let t = 0; return () => (t += 1000); })() },
    );
    const first = await monitor.sample();
    expect(asked.sort()).toEqual(['bad', 'hung', 'p']);
    expect(first.primary).toBe('p');
    expect(first.members.find((m) => m.name === 'hung')).toMatchObject({ state: 'unreachable', error: 'no answer within 50 ms' });
    expect(first.members.find((m) => m.name === 'bad')?.error).toMatch(/no role/);
    const second = await monitor.sample();
    expect(second.walRateBytesPerSecond).toBe(0x100000);
  });
});
