/**
 * Message ids: UUID version 7 (RFC 9562), time-ordered, increasing within a process.
 *
 * A message's id is the key of its row, of its parts and of its events. Random (version 4) ids land anywhere in those
 * B-trees, so every commit dirtied pages all over them; ids that grow with time append at their ends. Measured with the
 * message store's tables and indexes in SQLite (bench/RESULTS.md, issue 16): 195 → 100 µs of CPU per message on an
 * empty database, 298 → 88 µs with 500,000 messages in it. The id tells when the message was accepted, to the
 * millisecond, as its `createdAt` already does; the other 74 bits are random.
 */
import { randomFillSync } from "node:crypto"

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
