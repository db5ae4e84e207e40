/**
 * SMPP v3.4 command_status codes (section 5.1.3): names for logs and what a submitter should do about each.
 */

export const CommandStatus = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RINVCMDLEN: 0x02,
  ESME_RINVCMDID: 0x03,
  ESME_RINVBNDSTS: 0x04,
  ESME_RALYBND: 0x05,
  ESME_RINVPRTFLG: 0x06,
  ESME_RINVREGDLVFLG: 0x07,
  ESME_RSYSERR: 0x08,
  ESME_RINVSRCADR: 0x0a,
  ESME_RINVDSTADR: 0x0b,
  ESME_RINVMSGID: 0x0c,
  ESME_RBINDFAIL: 0x0d,
  ESME_RINVPASWD: 0x0e,
  ESME_RINVSYSID: 0x0f,
  ESME_RCANCELFAIL: 0x11,
  ESME_RREPLACEFAIL: 0x13,
  ESME_RMSGQFUL: 0x14,
  ESME_RINVSERTYP: 0x15,
  ESME_RINVNUMDESTS: 0x33,
  ESME_RINVDLNAME: 0x34,
  ESME_RINVDESTFLAG: 0x40,
  ESME_RINVSUBREP: 0x42,
  ESME_RINVESMCLASS: 0x43,
  ESME_RCNTSUBDL: 0x44,
  ESME_RSUBMITFAIL: 0x45,
  ESME_RINVSRCTON: 0x48,
  ESME_RINVSRCNPI: 0x49,
  ESME_RINVDSTTON: 0x50,
  ESME_RINVDSTNPI: 0x51,
  ESME_RINVSYSTYP: 0x53,
  ESME_RINVREPFLAG: 0x54,
  ESME_RINVNUMMSGS: 0x55,
  ESME_RTHROTTLED: 0x58,
  ESME_RINVSCHED: 0x61,
  ESME_RINVEXPIRY: 0x62,
  ESME_RINVDFTMSGID: 0x63,
  ESME_RX_T_APPN: 0x64,
  ESME_RX_P_APPN: 0x65,
  ESME_RX_R_APPN: 0x66,
  ESME_RQUERYFAIL: 0x67,
  ESME_RINVOPTPARSTREAM: 0xc0,
  ESME_ROPTPARNOTALLWD: 0xc1,
  ESME_RINVPARLEN: 0xc2,
  ESME_RMISSINGOPTPARAM: 0xc3,
  ESME_RINVOPTPARAMVAL: 0xc4,
  ESME_RDELIVERYFAILURE: 0xfe,
  ESME_RUNKNOWNERR: 0xff
} as const

export type CommandStatusName = keyof typeof CommandStatus

const names: ReadonlyMap<number, CommandStatusName> = new Map(
  (Object.keys(CommandStatus) as Array<CommandStatusName>).map((name) => [CommandStatus[name], name])
)

/** "ESME_RTHROTTLED" for 0x58; a code outside the table as hex, at least two digits: "0x9A", "0x400". */
export const commandStatusName = (code: number): string =>
  names.get(code) ?? `0x${code.toString(16).toUpperCase().padStart(2, "0")}`

/**
 * - ok: accepted.
 * - throttled: retry later and lower the send rate.
 * - rebind: the session is not bound as it should be; rebind, then retry.
 * - transient: retry with backoff, a bounded number of times (vendor codes 0x400–0x4FF included).
 * - permanent: fail the message.
 */
export type CommandStatusClass = "ok" | "transient" | "permanent" | "throttled" | "rebind"

const transient: ReadonlySet<number> = new Set([
  CommandStatus.ESME_RMSGQFUL,
  CommandStatus.ESME_RSYSERR,
  CommandStatus.ESME_RSUBMITFAIL,
  CommandStatus.ESME_RUNKNOWNERR,
  // "Receiver temporary app error": temporary by definition, whichever side sends it.
  CommandStatus.ESME_RX_T_APPN
])

export const classifyCommandStatus = (code: number): CommandStatusClass => {
  if (code === CommandStatus.ESME_ROK) return "ok"
  if (code === CommandStatus.ESME_RTHROTTLED) return "throttled"
  if (code === CommandStatus.ESME_RINVBNDSTS) return "rebind"
  if (transient.has(code) || (code >= 0x400 && code <= 0x4ff)) return "transient"
  return "permanent"
}
