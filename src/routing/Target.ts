/** Where a message goes, and the key a stored message names it by (`routeLinkId`: a link id or `pool:<id>`). */

/** One link, or a pool that picks one of its links. */
export type Target = { readonly _tag: "Link"; readonly id: string } | { readonly _tag: "Pool"; readonly id: string }

export const targetKey = (target: Target) => target._tag === "Link" ? target.id : `pool:${target.id}`

/** The target a stored key names (the inverse of `targetKey`). */
export const targetOfKey = (key: string): Target =>
  key.startsWith("pool:") ? { _tag: "Pool", id: key.slice(5) } : { _tag: "Link", id: key }
