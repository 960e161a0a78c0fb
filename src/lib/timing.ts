/**
 * Phase timings for the bench scripts and for anyone asking why a run is slow:
 * with NETKIT_TIMING=1 each phase prints "netkit timing: NAME N ms" (since the
 * process started) on stderr. Off, it costs one property read.
 */
const on = process.env.NETKIT_TIMING === '1'

export function phase(name: string): void {
  if (on) process.stderr.write(`netkit timing: ${name} ${performance.now().toFixed(0)} ms\n`)
}
