/**
 * The link of a registration mail: confirms the address (single use), then asks to sign in.
 */
import { Alert, Anchor, Button, Stack } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { ProblemAlert } from "../../components/States.tsx"
import { AuthFrame, mailedToken } from "./AuthFrame.tsx"

export const Confirm = () => {
  const confirm = useMutation({ mutationFn: () => unwrap(api.POST("/v1/auth/confirm", { body: { token: mailedToken() } })) })
  return (
    <AuthFrame title="Confirm your address">
      {confirm.isSuccess
        ? (
          <Alert color="green" title="Your account is ready" role="status">
            <Anchor component={Link} href="/sign-in">Sign in</Anchor> as {confirm.data.user.email}.
          </Alert>
        )
        : (
          <Stack>
            {confirm.isError ? <ProblemAlert error={confirm.error} title="The link did not work" /> : null}
            <Button onClick={() => confirm.mutate()} loading={confirm.isPending}>Confirm my address</Button>
          </Stack>
        )}
    </AuthFrame>
  )
}
