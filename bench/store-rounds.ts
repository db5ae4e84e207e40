/**
 * `npm run bench:store`: what the message store costs per message when its rounds are small (issue 16). One message's
 * whole life through the real MessageStore on SQLite (a file, WAL), as a link drives it: the accept and the handed mark
 * awaited, the submit result and the receipt (a few messages later) stored while the next messages go on — in rounds
 * of one message (a moderate rate: every group commit holds one message's work) and of BENCH_BATCH messages (default
 * 50: a busy gateway), alternated BENCH_REPEAT times (default 3). Prints the CPU of this process per message for each
 * round size and their ratio; BENCH_MESSAGES (default 3,000) per measurement after 500 of warm-up. Never recorded.
 */
import { Effect, Fiber } from "effect"
import { newMessageId } from "../src/domain/MessageId.ts"
import { migrate } from "../src/layers/Migrations.ts"
import type { NewMessage, PartOutcome } from "../src/storage/MessageStore.ts"
import { MessageStore } from "../src/storage/MessageStore.ts"
import { onSqlite, storeMessage } from "./Databases.ts"

const messages = Number(process.env.BENCH_MESSAGES ?? 3000)
const batch = Number(process.env.BENCH_BATCH ?? 50)
const repeat = Number(process.env.BENCH_REPEAT ?? 3)
/** Receipts come this many rounds after their submit. */
const receiptLag = 5

const lives = (store: MessageStore["Service"], count: number, size: number) =>
  Effect.gen(function*() {
    const rounds: Array<ReadonlyArray<NewMessage>> = []
    const pending: Array<Fiber.Fiber<unknown, unknown>> = []
    let answered: Array<PartOutcome> = []
    for (let done = 0; done < count; done += size) {
      const round = Array.from({ length: size }, (_, i) => storeMessage(newMessageId(), done + i))
      rounds.push(round)
      yield* store.accept(round)
      // The answers since the last marks go with the next marks, as on a link's fast path.
      yield* store.recordHanded(answered, round.map((m) => ({ messageId: m.id, seq: 1, linkId: "link1", at: Date.now() })))
      answered = round.map((m) => ({
        _tag: "Submitted",
        messageId: m.id,
        seq: 1,
        segments: 1,
        linkId: "link1",
        smscMessageId: m.id.slice(-12),
        at: Date.now()
      }))
      pending.push(yield* Effect.forkChild(store.recordOutcomes(answered)))
      for (const m of rounds[rounds.length - 1 - receiptLag] ?? []) {
        pending.push(yield* Effect.forkChild(store.recordReceipt({
          linkId: "link1",
          candidates: [m.id.slice(-12)],
          status: "delivered",
          error: undefined,
          at: Date.now()
        })))
      }
      // Lets the writer take what the round left, as the time between requests does.
      yield* Effect.yieldNow
    }
    yield* Fiber.joinAll(pending)
  })

const measure = (size: number) =>
  onSqlite(
    "smsgw-store-rounds-",
    Effect.gen(function*() {
      yield* migrate
      const store = yield* MessageStore
      yield* lives(store, 500, size)
      const cpu0 = process.cpuUsage()
      yield* lives(store, messages, size)
      const cpu = process.cpuUsage(cpu0)
      return Math.round((cpu.user + cpu.system) / messages)
    }).pipe(Effect.provide(MessageStore.layer))
  )

const program = Effect.gen(function*() {
  const ratios: Array<number> = []
  for (let r = 0; r < repeat; r++) {
    const one = yield* measure(1)
    const many = yield* measure(batch)
    ratios.push(one / many)
    console.log(`CPU per message: rounds of 1 ${one} µs, rounds of ${batch} ${many} µs (${(one / many).toFixed(1)}×)`)
  }
  const sorted = ratios.toSorted((a, b) => a - b)
  console.log(`median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)}× the CPU per message in rounds of one`)
})

Effect.runPromise(program as Effect.Effect<void>)
