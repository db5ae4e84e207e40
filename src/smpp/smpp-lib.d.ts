/**
 * Declarations for the parts of npm `smpp` 0.5.1 (CommonJS, untyped) that src/smpp uses.
 * Fields parsed from the wire are optional: the library stops reading a body where the PDU ends.
 */
declare module "smpp" {
  import type { EventEmitter } from "node:events"
  import type { Server as NetServer, Socket } from "node:net"

  /** Values accepted when building a PDU; message fields are always Buffers here (never auto-encoded text). */
  export interface PduFields {
    command_status?: number
    sequence_number?: number
    system_id?: string
    password?: string
    system_type?: string
    interface_version?: number
    addr_ton?: number
    addr_npi?: number
    address_range?: string
    service_type?: string
    source_addr_ton?: number
    source_addr_npi?: number
    source_addr?: string
    dest_addr_ton?: number
    dest_addr_npi?: number
    destination_addr?: string
    esm_class?: number
    protocol_id?: number
    priority_flag?: number
    schedule_delivery_time?: string
    validity_period?: string
    registered_delivery?: number
    replace_if_present_flag?: number
    data_coding?: number
    sm_default_msg_id?: number
    short_message?: Buffer
    message_id?: string
    message_payload?: Buffer
    receipted_message_id?: string
    message_state?: number
    network_error_code?: Buffer
  }

  export class PDU {
    /** A command and its fields; or a whole PDU's bytes to decode (throws on bytes it cannot read). */
    constructor(command: string | Buffer, options?: PduFields)
    command: string
    command_id: number
    command_status: number
    sequence_number: number
    system_id?: string
    password?: string
    system_type?: string
    interface_version?: number
    source_addr_ton?: number
    source_addr_npi?: number
    source_addr?: string
    dest_addr_ton?: number
    dest_addr_npi?: number
    destination_addr?: string
    esm_class?: number
    schedule_delivery_time?: string
    validity_period?: string
    registered_delivery?: number
    data_coding?: number
    /** A Buffer once the message filters are removed (see `Session.ts`), a decoded object otherwise. */
    short_message?: unknown
    message_id?: string
    message_payload?: unknown
    receipted_message_id?: string
    message_state?: number
    network_error_code?: Buffer
    /** SAR TLVs: a concatenated message's reference, parts and this part's number (1-based). */
    sar_msg_ref_num?: number
    sar_total_segments?: number
    sar_segment_seqnum?: number
    isResponse(): boolean
    response(options?: PduFields): PDU
    toBuffer(): Buffer
  }

  export interface SessionOptions {
    host?: string
    port?: number
    tls?: boolean
    rejectUnauthorized?: boolean
    ca?: string | Buffer
    servername?: string
    socket?: Socket
  }

  export class Session extends EventEmitter {
    constructor(options: SessionOptions)
    readonly socket: Socket
    /** false when the socket is not writable (nothing was sent). Throws if the PDU cannot be encoded. */
    send(pdu: PDU, responseCallback?: (pdu: PDU) => void, sendCallback?: (pdu: PDU) => void): boolean
    close(callback?: () => void): void
    destroy(callback?: () => void): void
    pause(): void
    resume(): void
  }

  export interface Server extends NetServer {
    readonly sessions: Array<Session>
  }

  export interface ServerOptions {
    key?: string | Buffer
    cert?: string | Buffer
  }

  export interface ParamDef {
    filter?: unknown
  }
  export interface CommandDef {
    id: number
    params?: Record<string, ParamDef>
  }
  export interface TlvDef {
    id: number
    filter?: unknown
  }

  interface SmppModule {
    readonly PDU: typeof PDU
    readonly Session: typeof Session
    createServer(options: ServerOptions, listener: (session: Session) => void): Server
    readonly commands: Record<string, CommandDef>
    readonly tlvs: Record<string, TlvDef>
    readonly errors: Record<string, number>
  }

  const smpp: SmppModule
  export default smpp
}
