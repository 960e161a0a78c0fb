/**
 * The words netkit uses for where something is, in every message: one
 * spelling, so a message reads the same from every command.
 */

/** " in namespace NS", or nothing for the root namespace. */
export const inNamespace = (netns?: string | null): string => (netns ? ` in namespace ${netns}` : '')

/** " --netns NS" (for a netkit command line a message suggests), or nothing for the root namespace. */
export const netnsFlag = (netns?: string | null): string => (netns ? ` --netns ${netns}` : '')
