/**
 * URLs the gateway calls out to on a client's behalf (status callbacks): the syntax rule. Where one may point (no
 * private, loopback or link-local address unless the configuration allows it) is checked when it is resolved.
 */
import { Schema } from "effect"

/** Longest URL taken. */
export const maxUrlLength = 2048

/** An absolute http(s) URL without credentials or fragment, at most 2,048 characters. */
export const HttpUrl = Schema.String.check(
  Schema.isMaxLength(maxUrlLength),
  Schema.makeFilter((s: string) => {
    let url: URL
    try {
      url = new URL(s)
    } catch {
      return "must be an absolute URL"
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http or https URL"
    if (url.username !== "" || url.password !== "") return "must not carry credentials"
    if (url.hash !== "") return "must not have a fragment"
    return true
  })
)
