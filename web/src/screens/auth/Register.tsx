/**
 * Create an account and its organisation (its owner), or, with an invitation's token, join the inviting one. When
 * the gateway wants proof of the mailbox, the answer is "check your mail" and nothing exists until the link is used.
 */
import { Alert, Anchor, Button, PasswordInput, Stack, Text, TextInput } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useSession } from "../../api/session.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { AuthFrame } from "./AuthFrame.tsx"

const fields = ["name", "email", "password", "organisation"]

export const RegisterForm = ({ invitationToken }: { readonly invitationToken?: string }) => {
  const session = useSession()
  const [form, setForm] = useState({ name: "", email: "", password: "", organisation: "" })
  const register = useMutation({
    mutationFn: async () => {
      const result = await unwrap(api.POST("/v1/auth/register", {
        body: {
          name: form.name,
          email: form.email,
          password: form.password,
          ...(invitationToken !== undefined ? { invitationToken } : form.organisation !== "" ? { organisation: form.organisation } : {})
        }
      }))
      if ("status" in result) return result
      await session.signIn(form.email, form.password)
      return undefined
    }
  })
  const set = (key: keyof typeof form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [key]: e.currentTarget.value })
  if (register.data !== undefined) {
    return (
      <Alert color="blue" title="Check your mailbox" role="status">
        We sent a link to {register.data.email}. Open it before {new Date(register.data.expiresAt).toLocaleString()} to finish.
      </Alert>
    )
  }
  const fieldLevel = fields.some((f) => fieldError(register.error, f) !== undefined)
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        register.mutate()
      }}
    >
      <Stack>
        {register.isError && !fieldLevel ? <ProblemAlert error={register.error} title="Could not create the account" /> : null}
        <TextInput label="Your name" autoComplete="name" required value={form.name} onChange={set("name")}
          error={fieldError(register.error, "name")} />
        <TextInput label="Email" type="email" autoComplete="email" required value={form.email} onChange={set("email")}
          error={fieldError(register.error, "email")} />
        <PasswordInput label="Password" autoComplete="new-password" required value={form.password} onChange={set("password")}
          description="At least 10 characters" error={fieldError(register.error, "password")} />
        {invitationToken === undefined
          ? (
            <TextInput label="Organisation" description="Your company or team; you will be its owner" value={form.organisation}
              onChange={set("organisation")} error={fieldError(register.error, "organisation")} />
          )
          : null}
        <Button type="submit" loading={register.isPending}>{invitationToken === undefined ? "Create account" : "Create account and join"}</Button>
      </Stack>
    </form>
  )
}

export const Register = () => (
  <AuthFrame title="Create your account">
    <RegisterForm />
    <Text size="sm">Already have an account? <Anchor component={Link} href="/sign-in">Sign in</Anchor></Text>
  </AuthFrame>
)
