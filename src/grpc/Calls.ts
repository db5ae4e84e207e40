/**
 * What every gRPC handler needs from its call: an AbortSignal that fires when the client cancels, goes away or passes
 * its deadline (grpc-js emits `cancelled` for all three and answers the status itself), the peer's address, and a
 * count of the calls in flight — what a draining shutdown waits for, and what a leak would make grow.
 */
import { normalizeIp } from "../auth/IpAllowList.ts"

export class Calls {
  private open = 0
  /** Marks a call as started; the returned function marks it finished (once). */
  begin(): () => void {
    this.open++
    let finished = false
    return () => {
      if (finished) return
      finished = true
      this.open--
    }
  }
  get inFlight(): number {
    return this.open
  }
}

/** Aborted when the call is cancelled: by the client, by its deadline, or by its connection closing. */
export const cancelSignal = (call: { readonly cancelled: boolean; once(event: "cancelled", listener: () => void): unknown }): AbortSignal => {
  const controller = new AbortController()
  if (call.cancelled) controller.abort()
  else call.once("cancelled", () => controller.abort())
  return controller.signal
}

/** The address of grpc-js's `getPeer()` (`127.0.0.1:52044`, `::1:52044` or `[::1]:52044`), without its port. */
export const peerAddress = (peer: string): string | undefined => {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(peer)
  if (bracketed?.[1] !== undefined) return bracketed[1]
  const port = peer.lastIndexOf(":")
  if (port < 0) return peer === "" ? undefined : peer
  const address = peer.slice(0, port)
  return normalizeIp(address) !== undefined ? address : normalizeIp(peer) !== undefined ? peer : address
}
