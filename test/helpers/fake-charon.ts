/** A fake charon on a unix socket, for tests of netkit's VICI client and what reads through it. */
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after} from 'node:test'

import {encodePacket, PACKET, type Packet, PacketReader, type ViciInput} from '../../src/lib/tunnel/ipsec/vici-wire.js'

/** A fake charon: answers each command with `reply(name, message)`, and sends `events` before the reply; on a socket in a fresh folder, or at `at`. */
export function fakeCharon(
  reply: (name: string, msg: Record<string, unknown>) => {events?: [string, ViciInput][]; response?: ViciInput; unknown?: boolean; silent?: boolean},
  at?: string,
): {path: string; seen: Packet[]; server: Server} {
  const dir = at ? undefined : mkdtempSync(join(tmpdir(), 'netkit-fake-charon-'))
  const path = at ?? join(dir!, 'charon.vici')
  const seen: Packet[] = []
  const registered = new Set<string>()
  const server = createServer((c) => {
    const reader = new PacketReader()
    c.on('data', (d: Buffer) => {
      for (const p of reader.push(d)) {
        seen.push(p)
        if (p.type === PACKET.EVENT_REGISTER) {
          registered.add(p.name!)
          c.write(encodePacket(p.name === 'nosuch' ? PACKET.EVENT_UNKNOWN : PACKET.EVENT_CONFIRM))
        } else if (p.type === PACKET.EVENT_UNREGISTER) {
          registered.delete(p.name!)
          c.write(encodePacket(PACKET.EVENT_CONFIRM))
        } else if (p.type === PACKET.CMD_REQUEST) {
          const r = reply(p.name!, p.message ?? {})
          if (r.silent) continue
          if (r.unknown) {
            c.write(encodePacket(PACKET.CMD_UNKNOWN))
            continue
          }
          // Events and the reply in one write: the client must cut them apart.
          const out = (r.events ?? []).filter(([e]) => registered.has(e)).map(([e, m]) => encodePacket(PACKET.EVENT, e, m))
          c.write(Buffer.concat([...out, encodePacket(PACKET.CMD_RESPONSE, undefined, r.response ?? {})]))
        }
      }
    })
  })
  server.listen(path)
  after(() => {
    server.close()
    if (dir) rmSync(dir, {recursive: true, force: true})
  })
  return {path, seen, server}
}
