/**
 * Writes to one socket within one event-loop turn gathered into one write (gateway and simulator).
 */
import type { Socket } from "node:net"

/**
 * Gathers the PDUs written to a socket in one turn of the event loop into one write: the first write of a turn corks
 * the socket, and it is uncorked once the turn's synchronous work is done (`process.nextTick`). A window of submits
 * started together, or the responses to a burst of receipts, then costs one system call and one TCP segment instead
 * of one per PDU (sockets run with Nagle off, so without this every PDU is its own packet). Nothing waits longer than
 * the current turn.
 */
export const coalesceWrites = (socket: Socket): void => {
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  const write = socket.write
  socket.write = function(this: Socket, ...args: Parameters<Socket["write"]>) {
    if (!corked) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return write.apply(this, args)
  } as Socket["write"]
}
