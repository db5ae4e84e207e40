import { Effect, Layer } from "effect"
import { Access } from "../auth/Access.ts"
import { Accounts } from "../auth/Accounts.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { LoginThrottle } from "../auth/LoginThrottle.ts"
import { Mailer } from "../auth/Mailer.ts"
import { emailKey } from "../auth/Identity.ts"
import { hashPassword } from "../auth/Passwords.ts"
import { Tokens } from "../auth/Tokens.ts"
import * as LoginThrottleRedis from "../storage/LoginThrottleRedis.ts"
import type { GatewayConfig } from "./Config.ts"
import { redisConnections } from "./Redis.ts"
import type { RedisConnections } from "./Redis.ts"

/** Signing keys from the configuration, or the one kept in the database (generated on first start). */
const tokensLayer = (config: GatewayConfig) => {
  const auth = config.auth ?? {}
  const options = {
    issuer: auth.issuer ?? "smsgw",
    audience: auth.audience ?? "smsgw-api",
    accessTtlSeconds: auth.accessTokenTtlSeconds ?? 900
  }
  const configured = auth.jwtKeys ?? []
  if (configured.length > 0) return Tokens.layer({ ...options, keys: configured })
  return Layer.unwrap(Effect.gen(function*() {
    const store = yield* AccountStore
    const key = yield* store.signingKey.pipe(Effect.orDie)
    return Tokens.layer({ ...options, keys: [key] })
  }))
}

/** The operator account from configuration (or SMSGW_SUPERADMIN_EMAIL/PASSWORD), created or promoted on start. */
const superadminBootstrap = (config: GatewayConfig) => {
  const superadmin = config.auth?.superadmin
  if (superadmin === undefined) return Layer.empty
  return Layer.effectDiscard(Effect.gen(function*() {
    const store = yield* AccountStore
    const passwordHash = yield* hashPassword(superadmin.password)
    const user = yield* store.ensureSuperadmin({
      email: emailKey(superadmin.email),
      name: superadmin.name ?? "Operator",
      passwordHash
    }).pipe(Effect.orDie)
    yield* Effect.logInfo("superadmin account ready").pipe(Effect.annotateLogs({ userId: user.id }))
  }))
}

/** SMTP when configured; otherwise the embedded mode logs mails (and their links) and a cluster refuses to send. */
const mailerLayer = (config: GatewayConfig) => {
  const mail = config.mail
  if (mail?.smtp === undefined) return config.cluster === undefined ? Mailer.layerLog : Mailer.layerUnavailable
  return Mailer.layerSmtp({
    host: mail.smtp.host,
    port: mail.smtp.port,
    secure: mail.smtp.secure ?? mail.smtp.port === 465,
    requireTls: mail.smtp.requireTls,
    user: mail.smtp.user,
    password: mail.smtp.password,
    from: mail.from ?? "SMS Gateway <no-reply@localhost>",
    timeoutMs: mail.smtp.timeoutMs ?? 10_000
  })
}

export const authLayer = (config: GatewayConfig, connections: RedisConnections = redisConnections(config)) => {
  const throttle = config.auth?.loginThrottle ?? {}
  const limits = {
    perAccount: {
      max: throttle.perAccount?.max ?? 5,
      windowMs: (throttle.perAccount?.windowSeconds ?? 300) * 1000
    },
    perIp: { max: throttle.perIp?.max ?? 50, windowMs: (throttle.perIp?.windowSeconds ?? 300) * 1000 },
    registrations: {
      max: throttle.registrations?.max ?? 10,
      windowMs: (throttle.registrations?.windowSeconds ?? 3600) * 1000
    },
    invitations: {
      max: throttle.invitations?.max ?? 100,
      windowMs: (throttle.invitations?.windowSeconds ?? 3600) * 1000
    }
  }
  // Where limits are shared through Redis (several nodes), so are login attempts.
  const redis = config.rateLimits?.store === "redis" ? config.rateLimits.redis ?? {} : undefined
  const Throttle = redis === undefined
    ? LoginThrottle.layerMemory(limits)
    : LoginThrottleRedis.layerOn({
      ...limits,
      keyPrefix: `${redis.keyPrefix ?? "smsgw:rl:"}login:`,
      timeoutMs: redis.timeoutMs ?? 50
    }).pipe(Layer.provide(connections(redis)))
  const AccessLive = Access.layer({ trustedProxies: config.http?.trustedProxies ?? [], cacheTtlMs: 2000 })
  const AccountsLive = Accounts.layerWith({
    requireVerifiedEmail: config.auth?.requireVerifiedEmail ?? false,
    invitationTtlMs: (config.auth?.invitationTtlHours ?? 168) * 3_600_000,
    confirmationTtlMs: (config.auth?.confirmationTtlHours ?? 24) * 3_600_000,
    publicUrl: config.mail?.publicUrl ?? `http://localhost:${config.http?.port ?? 8080}`
  })
  return Layer.mergeAll(AccountsLive, superadminBootstrap(config)).pipe(
    Layer.provideMerge(AccessLive),
    Layer.provideMerge(Layer.mergeAll(tokensLayer(config), Throttle, mailerLayer(config)))
  )
}
