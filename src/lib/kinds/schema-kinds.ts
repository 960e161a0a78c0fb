/**
 * What a schema built from a parser or a helper (list, map) stands for, as
 * the host-file reference shows it: zod sees only "a string that is
 * transformed", netkit knows it is "an IP address". Kept per schema
 * definition, which zod shares between a schema and its described copies.
 */
import type {z} from 'zod/v4'

export type SchemaKind = {type: string; item?: z.ZodType; value?: z.ZodType}

const KINDS = new WeakMap<object, SchemaKind>()

/** Records what `schema` stands for and returns it unchanged. */
export function kindOf<S extends z.ZodType>(kind: SchemaKind, schema: S): S {
  KINDS.set(schema._zod.def, kind)
  return schema
}

export function schemaKind(schema: z.ZodType): SchemaKind | undefined {
  return KINDS.get(schema._zod.def)
}
