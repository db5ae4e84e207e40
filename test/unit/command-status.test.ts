import { describe, expect, it } from "@effect/vitest"
import { classifyCommandStatus, CommandStatus, commandStatusName } from "../../src/smpp/CommandStatus.ts"

describe("command_status", () => {
  it("names the SMPP v3.4 codes", () => {
    const expected: ReadonlyArray<readonly [number, string]> = [
      [0x00, "ESME_ROK"], [0x01, "ESME_RINVMSGLEN"], [0x02, "ESME_RINVCMDLEN"], [0x03, "ESME_RINVCMDID"],
      [0x04, "ESME_RINVBNDSTS"], [0x05, "ESME_RALYBND"], [0x08, "ESME_RSYSERR"], [0x0a, "ESME_RINVSRCADR"],
      [0x0b, "ESME_RINVDSTADR"], [0x0c, "ESME_RINVMSGID"], [0x0d, "ESME_RBINDFAIL"], [0x0e, "ESME_RINVPASWD"],
      [0x0f, "ESME_RINVSYSID"], [0x14, "ESME_RMSGQFUL"], [0x43, "ESME_RINVESMCLASS"], [0x45, "ESME_RSUBMITFAIL"],
      [0x48, "ESME_RINVSRCTON"], [0x49, "ESME_RINVSRCNPI"], [0x50, "ESME_RINVDSTTON"], [0x51, "ESME_RINVDSTNPI"],
      [0x58, "ESME_RTHROTTLED"], [0x61, "ESME_RINVSCHED"], [0x62, "ESME_RINVEXPIRY"], [0x64, "ESME_RX_T_APPN"],
      [0x65, "ESME_RX_P_APPN"], [0x66, "ESME_RX_R_APPN"], [0x67, "ESME_RQUERYFAIL"],
      [0xc0, "ESME_RINVOPTPARSTREAM"], [0xc1, "ESME_ROPTPARNOTALLWD"], [0xc2, "ESME_RINVPARLEN"],
      [0xc3, "ESME_RMISSINGOPTPARAM"], [0xc4, "ESME_RINVOPTPARAMVAL"], [0xfe, "ESME_RDELIVERYFAILURE"],
      [0xff, "ESME_RUNKNOWNERR"]
    ]
    for (const [code, name] of expected) expect(commandStatusName(code)).toBe(name)
    expect(CommandStatus.ESME_RTHROTTLED).toBe(0x58)
  })

  it("writes unknown codes as hex", () => {
    expect(commandStatusName(0x09)).toBe("0x09")
    expect(commandStatusName(0x9a)).toBe("0x9A")
    expect(commandStatusName(0x400)).toBe("0x400")
  })

  it("classifies the codes as SMPP-NOTES says", () => {
    expect(classifyCommandStatus(0x00)).toBe("ok")
    expect(classifyCommandStatus(0x58)).toBe("throttled")
    expect(classifyCommandStatus(0x04)).toBe("rebind")
    for (const code of [0x14, 0x08, 0x45, 0xff, 0x64, 0x400, 0x4ff]) expect(classifyCommandStatus(code)).toBe("transient")
    for (const code of [0x01, 0x02, 0x03, 0x0a, 0x0b, 0x43, 0x48, 0x49, 0x50, 0x51, 0x61, 0x62, 0x63, 0x65, 0x66, 0xc0, 0xc4, 0xfe, 0x3ff, 0x500]) {
      expect(classifyCommandStatus(code)).toBe("permanent")
    }
  })
})
