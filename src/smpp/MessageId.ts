/**
 * SMSC message ids: some SMSCs answer submit_sm_resp in decimal and write the receipt id in hex, or the reverse.
 * Store under normalizeMessageId(submit id); look a receipt up with each of messageIdCandidates(receipt id).
 */

const decimal = /^[0-9]+$/u
const hex = /^[0-9a-f]+$/u

/**
 * The longest SMSC message id we take: SMPP v3.4 gives `message_id` (submit_sm_resp) and `receipted_message_id` 65
 * octets with the NUL; the Appendix B `id:` field says 10 digits, but SMSCs write the same long ids there.
 */
export const maxMessageIdLength = 64

const printable = /^[\x20-\x7e]+$/u

/** A message id as the SMSC may give it: 1–64 printable ASCII characters once trimmed (NULs and spaces). */
export const isValidMessageId = (id: string): boolean => {
  const trimmed = id.replace(/\0+$/u, "").trim()
  return trimmed.length > 0 && trimmed.length <= maxMessageIdLength && printable.test(trimmed)
}

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
