/**
 * The Prometheus text exposition format (version 0.0.4), as node_exporter's
 * textfile collector reads it: for each metric family a `# HELP` and a
 * `# TYPE` line, then its samples, one per line, all of a family together.
 *
 * netkit writes a snapshot once per run; it has no process to instrument and
 * serves nothing. So this is the small formatter the format needs (escaping of
 * help texts and label values, the special values, name checks) rather than a
 * client library: prom-client's registry would bring its global metric objects,
 * collectors and dependencies into the single binary to print the same lines.
 */

export type MetricType = 'gauge' | 'counter'

export interface Sample {
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  help: string
  type: MetricType
  samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A HELP text: backslash and line feed escaped. */
export function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

/** A label value: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

/** A sample value as Prometheus writes it: integers exactly, NaN, +Inf, -Inf. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function labelString(labels: Record<string, string>): string {
  const entries = Object.entries(labels)
  if (entries.length === 0) return ''
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
}

/**
 * Renders the families (those without samples are left out). A wrong name, a
 * counter without `_total` or two samples with the same labels is netkit's own
 * mistake: it throws rather than write a file Prometheus would reject.
 */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = []
  const seen = new Set<string>()
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`internal error: bad metric name ${JSON.stringify(f.name)}`)
    if (seen.has(f.name)) throw new Error(`internal error: metric ${f.name} twice`)
    seen.add(f.name)
    if (f.type === 'counter' && !f.name.endsWith('_total')) throw new Error(`internal error: counter ${f.name} does not end in _total`)
    if (f.samples.length === 0) continue
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    const sets = new Set<string>()
    for (const s of f.samples) {
      for (const k of Object.keys(s.labels)) {
        if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`internal error: bad label name ${JSON.stringify(k)} on ${f.name}`)
      }
      const labels = labelString(s.labels)
      if (sets.has(labels)) throw new Error(`internal error: ${f.name}${labels} twice`)
      sets.add(labels)
      lines.push(`${f.name}${labels} ${formatValue(s.value)}`)
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}
