/**
 * Message ids: UUID version 7 (RFC 9562), time-ordered, increasing within a process.
 *
 * A message's id is the key of its row, of its parts and of its events. Random (version 4) ids land anywhere in those
 * B-trees, so every commit dirtied pages all over them; ids that grow with time append at their ends. Measured with the
 * message store's tables and indexes in SQLite (bench/RESULTS.md, issue 16): 195 → 100 µs of CPU per message on an
 * empty database, 298 → 88 µs with 500,000 messages in it. The id tells when the message was accepted, to the
 * millisecond, as its `createdAt` already does; the other 74 bits are random.
 *
 * A campaign's messages have ids derived from the recipient instead (a crashed runner finds what it already sent by
 * them), laid out the same way: the campaign's creation time first, then the recipient's position, so one campaign's
 * messages append within their own stretch of the indexes.
 */
import { createHash, randomFillSync } from "node:crypto"

/** Random bytes drawn 4 KiB at a time (as `crypto.randomUUID` does with its own cache). */
const pool = Buffer.alloc(4096)
let poolAt = pool.length
const bytes = Buffer.alloc(16)

let lastMs = 0
/** rand_a (12 bits) as a counter within one millisecond (RFC 9562 §6.2, method 1): ids stay in order. */
let counter = 0

/** A new message id: `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`, later ids sorting after earlier ones (same process). */
export const newMessageId = (now: number = Date.now()): string => {
  if (poolAt + 10 > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  let ms = now
  if (ms > lastMs) {
    // Starts low in the counter's range, leaving room to count up within the millisecond.
    counter = pool.readUInt16BE(poolAt) & 0x1ff
    poolAt += 2
  } else {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      // 4,096 ids in one millisecond: borrow the next one rather than go out of order.
      ms = lastMs + 1
      counter = 0
    }
  }
  lastMs = ms
  bytes.writeUIntBE(ms, 0, 6)
  bytes.writeUInt16BE(0x7000 | counter, 6)
  pool.copy(bytes, 8, poolAt, poolAt + 8)
  poolAt += 8
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const h = bytes.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

const hexId = (bytes: Buffer): string => {
  const h = bytes.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * The message id of a campaign's recipient at `pos`, for its attempt `attempt`: the same for the same three, and
 * different for any other. A UUID of version 8 (RFC 9562's layout for ids of one's own making): 48 bits of the
 * campaign's creation time, 26 bits of a hash of its id (two campaigns created in the same millisecond), then the
 * position (32 bits) and the attempt (16 bits). Ids of one campaign sort by position, and a campaign's batches
 * append to the store's indexes as the gateway's own ids do.
 */
export const campaignMessageId = (campaign: { readonly id: string; readonly createdAt: number }, pos: number, attempt: number): string => {
  // Outside the layout (never in practice): the hashed form, as unique and as deterministic.
  if (pos > 0xffffffff || attempt > 0xffff || pos < 0 || attempt < 0) return legacyCampaignMessageId(campaign.id, pos, attempt)
  const campaignHash = createHash("sha256").update(campaign.id).digest()
  const bytes = Buffer.alloc(16)
  bytes.writeUIntBE(Math.max(0, Math.min(campaign.createdAt, 0xffffffffffff)), 0, 6)
  // version 8, then 12 bits of the hash
  bytes.writeUInt16BE(0x8000 | ((campaignHash[0] ?? 0) << 4) | ((campaignHash[1] ?? 0) >>> 4), 6)
  // variant 10, then 14 more bits of the hash
  bytes.writeUInt16BE(0x8000 | (((campaignHash[1] ?? 0) & 0x0f) << 10) | ((campaignHash[2] ?? 0) << 2) | ((campaignHash[3] ?? 0) >>> 6), 8)
  bytes.writeUInt32BE(pos, 10)
  bytes.writeUInt16BE(attempt, 14)
  return hexId(bytes)
}

/**
 * How campaign message ids were derived before they were time-ordered (a version 8 UUID from a hash of the campaign,
 * the position and the attempt). Still looked up beside the current form: a batch a campaign had in flight when the
 * gateway was upgraded is found under these, not sent twice.
 */
export const legacyCampaignMessageId = (campaignId: string, pos: number, attempt: number): string => {
  const h = createHash("sha256").update(`${campaignId}\u0000${pos}\u0000${attempt}`).digest("hex")
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}
