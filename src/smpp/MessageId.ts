/**
 * SMSC message ids: some SMSCs answer submit_sm_resp in decimal and write the receipt id in hex, or the reverse.
 * Store under normalizeMessageId(submit id); look a receipt up with each of messageIdCandidates(receipt id).
 */

const decimal = /^[0-9]+$/u
const hex = /^[0-9a-f]+$/u

/** Trimmed, lower case, without leading zeros ("000" stays "0"). */
export const normalizeMessageId = (id: string): string => {
  const lower = id.trim().toLowerCase()
  let i = 0
  while (i < lower.length - 1 && lower.charCodeAt(i) === 0x30) i++
  return i === 0 ? lower : lower.slice(i)
}

/**
 * The normalised id, then its hex form when it is all decimal digits, then its decimal form when it is valid hex
 * (an all-digit id is both), without duplicates. Empty for an empty id.
 */
export const messageIdCandidates = (id: string): ReadonlyArray<string> => {
  const normal = normalizeMessageId(id)
  if (normal === "") return []
  const candidates = [normal]
  const add = (candidate: string): void => {
    if (!candidates.includes(candidate)) candidates.push(candidate)
  }
  if (decimal.test(normal)) add(BigInt(normal).toString(16))
  if (hex.test(normal)) add(BigInt(`0x${normal}`).toString(10))
  return candidates
}
