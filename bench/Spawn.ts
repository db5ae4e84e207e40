/**
 * The benchmarks' child processes (gateways, the simulator, Kannel's boxes): started with their output kept, the tail
 * printed if one exits on its own (not by a signal), so a run that breaks says why.
 */
import { type ChildProcess, spawn } from "node:child_process"
import type { SpawnOptions } from "node:child_process"

export const spawnKeepingTail = (command: string, args: ReadonlyArray<string>, name: string, options: SpawnOptions = {}): ChildProcess => {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
  let tail = ""
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  child.on("exit", (code, signal) => {
    if (signal === null) console.error(`${name} exited with ${code}:\n${tail}`)
  })
  return child
}
