/**
 * Config files netkit writes are rendered from templates/ with Eta (no HTML
 * escaping: these are config files). Values are validated before they get
 * here; templates only place them.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {templatesDir} from './paths.js'

export async function renderTemplate(name: string, data: Record<string, unknown>): Promise<string> {
  const {Eta} = await import('eta')
  const eta = new Eta({autoEscape: false, autoTrim: false, useWith: false})
  const source = readFileSync(join(templatesDir(), name), 'utf8')
  return eta.renderString(source, data)
}
