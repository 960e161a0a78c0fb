/**
 * Typed flags, defined once: each parses and validates its value with
 * validate.ts, so a bad value is a UsageError (exit 2) before anything runs.
 */
import {Args, Flags} from '@oclif/core'

import * as v from './validate.js'

export const netns = Flags.custom<string>({
  summary: 'Run inside this network namespace.',
  helpGroup: 'GLOBAL',
  parse: async (s) => v.netnsName(s),
})

export const verbose = Flags.boolean({
  summary: "Show every command run and the wrapped tools' own messages.",
  helpGroup: 'GLOBAL',
})

export const dryRun = Flags.boolean({
  summary: 'Print the exact commands and change nothing.',
})

export const owned = Flags.boolean({summary: 'Show only objects netkit created.'})

export const ifname = Flags.custom<string>({parse: async (s) => v.ifname(s)})
export const netnsOpt = Flags.custom<string>({parse: async (s) => v.netnsName(s)})
export const ip = Flags.custom<v.Address>({parse: async (s) => v.ipAddress(s)})
export const network = Flags.custom<v.Cidr>({parse: async (s) => v.network(s)})
export const mtu = Flags.custom<number>({parse: async (s) => v.mtu(s)})
export const mark = Flags.custom<v.Mark>({parse: async (s) => v.mark(s)})
export const port = Flags.custom<number>({parse: async (s) => v.port(s)})
export const u32 = (what: string, min = 0) => Flags.custom<number>({parse: async (s) => v.integer(s, what, min, v.U32_MAX)})

export const ifnameArg = (description: string) => Args.string({parse: async (s) => v.ifname(s), description, required: true})
export const netnsArg = (description: string) => Args.string({parse: async (s) => v.netnsName(s), description, required: true})
export const interfaceAddressArg = (description: string) =>
  Args.custom<v.Cidr>({parse: async (s) => v.interfaceAddress(s, 'address')})({description, required: true})
export const ipArg = (description: string) => Args.custom<v.Address>({parse: async (s) => v.ipAddress(s)})({description, required: true})
