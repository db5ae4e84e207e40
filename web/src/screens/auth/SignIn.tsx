/**
 * Sign in with email and password; the session then lives in an HttpOnly cookie, the access token in memory.
 */
import { Anchor, Button, PasswordInput, Stack, Text, TextInput } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { useState } from "react"
import { Link } from "wouter"
import { useSession } from "../../api/session.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { AuthFrame } from "./AuthFrame.tsx"

export const SignIn = () => {
  const session = useSession()
  const [email, setEmail] = useState("")
  const [password, setPassword] = useState("")
  const signIn = useMutation({ mutationFn: () => session.signIn(email, password) })
  const fieldLevel = fieldError(signIn.error, "email") !== undefined || fieldError(signIn.error, "password") !== undefined
  return (
    <AuthFrame title="Sign in">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          signIn.mutate()
        }}
      >
        <Stack>
          {signIn.isError && !fieldLevel ? <ProblemAlert error={signIn.error} title="Could not sign in" /> : null}
          <TextInput label="Email" type="email" autoComplete="username" required value={email}
            onChange={(e) => setEmail(e.currentTarget.value)} error={fieldError(signIn.error, "email")} />
          <PasswordInput label="Password" autoComplete="current-password" required value={password}
            onChange={(e) => setPassword(e.currentTarget.value)} error={fieldError(signIn.error, "password")} />
          <Button type="submit" loading={signIn.isPending}>Sign in</Button>
          <Text size="sm">No account yet? <Anchor component={Link} href="/register">Create one</Anchor></Text>
        </Stack>
      </form>
    </AuthFrame>
  )
}
