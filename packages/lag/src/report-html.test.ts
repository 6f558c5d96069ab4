import { describe, expect, it } from 'vitest';
import { parseRecording, summarize } from './recording.js';
import { recordedReports } from './test-support.js';
import { renderHtmlReport, REPORT_DATA_VERSION, type ReportData } from './report-html.js';

function embeddedData(html: string): ReportData {
  const match = /<script type="application\/json" id="walship-lag-data">([\s\S]*?)<\/script>/.exec(html);
  if (match === null) throw new Error('no embedded data');
  return JSON.parse(match[1]!) as ReportData;
}

describe('the HTML report', () => {
  it('is one self-contained page whose embedded data is every standby\'s series and summary', () => {
    const reports = recordedReports([1, 2, 'stopped', 4, 5]);
    const recording = parseRecording(reports.map((r) => JSON.stringify(r)).join('\n'));
    const html = renderHtmlReport(recording, summarize(recording), 'drill.jsonl');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // Nothing is fetched from elsewhere: no external script, stylesheet, image or font.
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html).not.toMatch(/@import|url\(/);
    const data = embeddedData(html);
    expect(data.version).toBe(REPORT_DATA_VERSION);
    expect(data.samples).toBe(5);
    expect(data.standbys.map((s) => s.name)).toEqual(['s1', 's2']);
    expect(data.standbys[0]!.points.map(([t, lag, , state]) => [t, lag, state])).toEqual([
      [1_000_000, 1, 'streaming'], [1_001_000, 2, 'streaming'], [1_002_000, null, 'disconnected'], [1_003_000, 4, 'streaming'], [1_004_000, 5, 'streaming'],
    ]);
    expect(data.standbys[0]!.summary).toMatchObject({ name: 's1', disconnectedSamples: 1, replayLagMs: { max: 5 } });
    // Two charts, each with a line per standby, and the disconnected stretch marked.
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html.match(/<path d="M[^"]+" stroke="[^"]+" class="series" data-standby="s1">/g)).toHaveLength(2);
    expect(html.match(/class="series" data-standby="s2"/g)).toHaveLength(2);
    expect(html.match(/class="disconnected" data-standby="s1"/g)).toHaveLength(2);
    // The replay lag line breaks where there is no figure: two pieces.
    const replayPath = /<path d="([^"]+)"[^>]*data-standby="s1">/.exec(html)![1]!;
    expect(replayPath.match(/M/g)).toHaveLength(2);
  });

  it('escapes names, and no name can end the embedded data early', () => {
    const reports = recordedReports([1, 2]).map((r) => JSON.stringify(r).replaceAll('"s1"', '"</script><b>x&y</b>"'));
    const recording = parseRecording(reports.join('\n'));
    const html = renderHtmlReport(recording, summarize(recording), '<title>');
    expect(html).toContain('&lt;/script&gt;&lt;b&gt;x&amp;y&lt;/b&gt;');
    expect(html).not.toContain('<b>x');
    expect(embeddedData(html).standbys[0]!.name).toBe('</script><b>x&y</b>');
  });
});
