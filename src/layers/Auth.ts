/**
 * The wiring of authentication: tokens, accounts, the login throttle (memory or Redis), mail, the superadmin
 * bootstrap.
 */
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
import type { EffectiveConfig } from "./Config.ts"
import { rateLimitKeyPrefix, rateLimitRedisTimeoutMs } from "./RateLimits.ts"
import { redisConnections } from "./Redis.ts"
import type { RedisConnections } from "./Redis.ts"

/** Signing keys from the configuration, or the one kept in the database (generated on first start). */
const tokensLayer = (config: EffectiveConfig) => {
  const auth = config.auth
  const options = { issuer: auth.issuer, audience: auth.audience, accessTtlSeconds: auth.accessTokenTtlSeconds }
  const configured = auth.jwtKeys
  if (configured.length > 0) return Tokens.layer({ ...options, keys: configured })
  return Layer.unwrap(Effect.gen(function*() {
    const store = yield* AccountStore
    const key = yield* store.signingKey.pipe(Effect.orDie)
    return Tokens.layer({ ...options, keys: [key] })
  }))
}

/** The operator account from configuration (or SMSGW_SUPERADMIN_EMAIL/PASSWORD), created or promoted on start. */
const superadminBootstrap = (config: EffectiveConfig) => {
  const superadmin = config.auth.superadmin
  if (superadmin === undefined) return Layer.empty
  return Layer.effectDiscard(Effect.gen(function*() {
    const store = yield* AccountStore
    const passwordHash = yield* hashPassword(superadmin.password)
    const user = yield* store.ensureSuperadmin({
      email: emailKey(superadmin.email),
      name: superadmin.name,
      passwordHash
    }).pipe(Effect.orDie)
    yield* Effect.logInfo("superadmin account ready").pipe(Effect.annotateLogs({ userId: user.id }))
  }))
}

/** SMTP when configured; otherwise the embedded mode logs mails (and their links) and a cluster refuses to send. */
const mailerLayer = (config: EffectiveConfig) => {
  const mail = config.mail
  if (mail.smtp === undefined) return config.cluster === undefined ? Mailer.layerLog : Mailer.layerUnavailable
  return Mailer.layerSmtp({
    host: mail.smtp.host,
    port: mail.smtp.port,
    secure: mail.smtp.secure ?? mail.smtp.port === 465,
    requireTls: mail.smtp.requireTls,
    user: mail.smtp.user,
    password: mail.smtp.password,
    from: mail.from,
    timeoutMs: mail.smtp.timeoutMs
  })
}

export const authLayer = (config: EffectiveConfig, connections: RedisConnections = redisConnections(config)) => {
  const throttle = config.auth.loginThrottle
  const perWindow = (w: { readonly max: number; readonly windowSeconds: number }) => ({ max: w.max, windowMs: w.windowSeconds * 1000 })
  const limits = {
    perAccount: perWindow(throttle.perAccount),
    perIp: perWindow(throttle.perIp),
    registrations: perWindow(throttle.registrations),
    invitations: perWindow(throttle.invitations)
  }
  // Where limits are shared through Redis (several nodes), so are login attempts.
  const redis = config.rateLimits.store === "redis" ? config.rateLimits.redis : undefined
  const Throttle = redis === undefined
    ? LoginThrottle.layerMemory(limits)
    : LoginThrottleRedis.layerOn({
      ...limits,
      keyPrefix: `${rateLimitKeyPrefix(redis)}login:`,
      timeoutMs: rateLimitRedisTimeoutMs(redis)
    }).pipe(Layer.provide(connections(redis)))
  const AccessLive = Access.layer({ trustedProxies: config.http.trustedProxies, cacheTtlMs: 2000 })
  const AccountsLive = Accounts.layerWith({
    requireVerifiedEmail: config.auth.requireVerifiedEmail,
    invitationTtlMs: config.auth.invitationTtlHours * 3_600_000,
    confirmationTtlMs: config.auth.confirmationTtlHours * 3_600_000,
    publicUrl: config.mail.publicUrl ?? `http://localhost:${config.http.port}`
  })
  return Layer.mergeAll(AccountsLive, superadminBootstrap(config)).pipe(
    Layer.provideMerge(AccessLive),
    Layer.provideMerge(Layer.mergeAll(tokensLayer(config), Throttle, mailerLayer(config)))
  )
}
