/**
 * The kernel object kinds apply knows, one module each (its object class,
 * its host-file entry's schema piece and checks, its live parser); what they
 * share is in object.ts. Schema pieces are functions of schema-parts.ts,
 * which only apply/schema.ts loads (with zod).
 */
export * from './addr.js'
export * from './link.js'
export * from './netns.js'
export * from './object.js'
export * from './proxy.js'
export * from './route.js'
export * from './rule.js'
export * from './sysctl.js'
export * from './table.js'
export * from './tunnel.js'
export * from './wg-peer.js'
export * from './xfrm-policy.js'
export * from './xfrm-state.js'
