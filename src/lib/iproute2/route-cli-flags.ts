/** The oclif flags of the route and rule commands. */
import {Flags} from '@oclif/core'

import * as f from '../flags.js'
import * as v from '../validate.js'
import {DEFAULT_RULE_PRIORITY} from './rule.js'

export const routeFlags = {
  via: f.ip({summary: 'Next hop.'}),
  dev: f.ifname({summary: 'Output device.'}),
  table: Flags.string({summary: 'Routing table, by name ("netkit table list") or number (default: main).'}),
  metric: f.u32('--metric')({summary: 'Route metric (priority among routes to the same destination).'}),
  src: f.ip({summary: 'Preferred source address.'}),
}

export const ruleFlags = {
  from: f.network({summary: 'Source network (a network address: host bits unset).'}),
  to: f.network({summary: 'Destination network.'}),
  fwmark: f.mark({summary: 'Firewall mark, VALUE or VALUE/MASK.'}),
  iif: f.ifname({summary: 'Incoming interface.'}),
  oif: f.ifname({summary: 'Outgoing interface.'}),
  table: Flags.string({summary: 'Table to look up, by name or number.', required: true}),
  priority: Flags.custom<number>({
    summary: `Rule priority (default ${DEFAULT_RULE_PRIORITY}; 1-32765).`,
    default: DEFAULT_RULE_PRIORITY,
    parse: async (s) => v.integer(s, '--priority', 1, 32765),
  })(),
}
