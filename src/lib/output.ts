/**
 * What people read: tables (the `table` package, bundled on its own and
 * loaded on first use) and the one-line outcome of a change.
 */
export interface Column<T> {
  header: string
  get: (row: T) => string | number | boolean | undefined | null
}

export async function renderTable<T>(rows: T[], columns: Column<T>[]): Promise<string> {
  const {table, getBorderCharacters} = await import('table')
  const data = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => cell(c.get(r))))]
  return table(data, {
    border: getBorderCharacters('void'),
    columnDefault: {paddingLeft: 0, paddingRight: 2},
    drawHorizontalLine: () => false,
  }).trimEnd()
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
