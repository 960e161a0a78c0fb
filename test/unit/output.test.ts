import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {type Column, renderTable} from '../../src/lib/output.js'

interface Row {
  name: string
  id: number | null
  up: boolean
  note?: string
}

const columns: Column<Row>[] = [
  {header: 'NAME', get: (r) => r.name},
  {header: 'ID', get: (r) => r.id},
  {header: 'UP', get: (r) => r.up},
  {header: 'NOTE', get: (r) => r.note},
]

describe('tables', () => {
  it('print left-aligned columns two spaces apart, "-" for nothing', async () => {
    const rows: Row[] = [
      {name: 'hs-a', id: 1, up: true, note: '10.0.0.0/8 via 192.0.2.1'},
      {name: 'a-much-longer-name', id: null, up: false},
      {name: 'x', id: 123456, up: true, note: ''},
    ]
    const text = await renderTable(rows, columns)
    assert.equal(text.split('\n').length, 4)
    // Inner lines keep their padding (as before); only the end of the whole text is trimmed.
    assert.equal(text.split('\n')[0], `NAME                ID      UP     NOTE${' '.repeat(22)}`)
    assert.equal(text.split('\n')[3], 'x                   123456  true   -')
  })

  it('print only the header line for no rows, without trailing spaces at the end', async () => {
    assert.equal(await renderTable([], columns), 'NAME  ID  UP  NOTE')
  })
})
