/**
 * What people read: tables (left-aligned columns, two spaces apart) and the
 * one-line outcome of a change.
 */
export interface Column<T> {
  header: string
  get: (row: T) => string | number | boolean | undefined | null
}

/**
 * Rows as left-aligned columns, each as wide as its widest cell plus two spaces, under a header
 * line. The same text the `table` package printed with a void border (test/unit/output.test.ts
 * compares them), written here because loading and validating that package cost every list
 * command a fifth of its start.
 */
export async function renderTable<T>(rows: T[], columns: Column<T>[]): Promise<string> {
  const data = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => cell(c.get(r))))]
  const widths = columns.map((_, i) => Math.max(...data.map((line) => line[i].length)))
  return data
    .map((line) => line.map((text, i) => text.padEnd(widths[i] + 2)).join(''))
    .join('\n')
    .trimEnd()
}

function cell(v: string | number | boolean | undefined | null): string {
  if (v === undefined || v === null || v === '') return '-'
  return String(v)
}

/** The result of a mutating command: what --json prints, and the line people read. */
export interface ChangeOutcome {
  /** false when the host already was as asked (idempotent no-op). */
  changed: boolean
  /** What was (or, in a dry run, would be) done, or why nothing was needed. */
  summary: string
  dryRun: boolean
  /** The exact commands, redacted, in order. */
  commands: string[]
}

/** An age in seconds as "12s ago", "3m 4s ago", "2h 5m ago" (null: "never"). */
export function ago(s: number | null): string {
  if (s === null) return 'never'
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`
}
