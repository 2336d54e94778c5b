// The report: one row per figure (median, min–max over runs, ratio to the ceiling, target).
import type { Summary } from './stats.ts';

export interface Figure {
  /** Section of the list (0–8). */
  item: number;
  label: string;
  unit: string;
  /** Undefined when the figure could not be measured in this build; `missing` says why. */
  value?: Summary;
  missing?: string;
  /**
   * Ratio to the ceiling: for rates, the figure ÷ ceiling commits/s (× steps/process when the
   * figure counts processes); for times, the figure ÷ one idle commit's latency.
   */
  ratio?: number;
  /** Ratio to the Celery + Redis peer's workflows/s (`--peers`), for rows counting processes/s. */
  peerRatio?: number;
  /** The target, e.g. `≥ 0.5× ceiling`, `≤ 5 ms`. */
  target?: string;
  /** Whether the median meets the target. */
  met?: boolean;
}

function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function formatTable(figures: readonly Figure[]): string {
  const withPeers = figures.some((f) => f.peerRatio !== undefined);
  const header = ['#', 'figure', 'median', 'min–max', 'vs ceiling', 'vs Celery', 'target', ''];
  const rows = figures.map((f) => [
    String(f.item),
    `${f.label} (${f.unit})`,
    f.value ? num(f.value.median) : `n/a (${f.missing ?? 'not measured'})`,
    f.value ? `${num(f.value.min)}–${num(f.value.max)}` : '',
    f.ratio === undefined || !Number.isFinite(f.ratio) ? '' : `${num(f.ratio)}×`,
    f.peerRatio === undefined || !Number.isFinite(f.peerRatio) ? '' : `${num(f.peerRatio)}×`,
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
  ]);
  // Without a peer row (no `--peers`), no empty column.
  const keep = (_: unknown, i: number) => withPeers || i !== 5;
  return render(
    header.filter(keep),
    rows.map((r) => r.filter(keep)),
  );
}

function render(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`.replace(/\s+\|$/, ' |');
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
