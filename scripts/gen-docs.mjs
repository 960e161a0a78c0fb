#!/usr/bin/env node
// Writes the reference pages that are generated from the code (run after
// `npm run build`): docs/host-file.md from the host-file schema and
// docs/doctor-checks.md from the doctor's registry. test/unit/docs.test.ts
// fails when a committed page differs from what this writes.
import {writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const {hostFileReference} = await import(join(root, 'dist/src/lib/apply/schema-reference.js'))
const {doctorChecksReference} = await import(join(root, 'dist/src/lib/doctor/reference.js'))
writeFileSync(join(root, 'docs/host-file.md'), hostFileReference())
writeFileSync(join(root, 'docs/doctor-checks.md'), doctorChecksReference())
console.log('wrote docs/host-file.md and docs/doctor-checks.md')
