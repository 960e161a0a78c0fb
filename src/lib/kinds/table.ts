/** Named routing tables (iproute2's rt_tables.d, machine-wide) as apply sees them. */
import type {TableRow} from '../iproute2/tables.js'
import {type Attrs, Obj} from './object.js'

export class TableObj extends Obj {
  get kind() {
    return 'table' as const
  }

  constructor(
    readonly name: string,
    readonly number: number,
    owned = true,
  ) {
    super(name, owned)
  }

  get attrs(): Attrs {
    return {id: this.number}
  }

  get desc(): string {
    return `table ${this.name} (${this.number})`
  }
}

/** The named tables read (tables.ts listTables, less the built-in ones). */
export const liveTables = (rows: TableRow[]): TableObj[] => rows.map((t) => new TableObj(t.name, t.id, t.owned))
