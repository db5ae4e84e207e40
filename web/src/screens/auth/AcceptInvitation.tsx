/**
 * The link of an invitation mail. Signed in: join the organisation with one click. Signed out: create an account
 * that joins it, or sign in first.
 */
import { Alert, Anchor, Button, Stack, Text } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useSession } from "../../api/session.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { AuthFrame, mailedToken } from "./AuthFrame.tsx"
import { RegisterForm } from "./Register.tsx"

export const AcceptInvitation = () => {
  const session = useSession()
  const token = mailedToken()
  const accept = useMutation({
    mutationFn: async () => {
      const joined = await unwrap(api.POST("/v1/invitations/accept", { body: { token } }))
      await session.switchOrganisation(joined.organisation.id)
      return joined
    }
  })
  if (session.state.status !== "signed-in") {
    return (
      <AuthFrame title="Join an organisation">
        <Text size="sm">You were invited. Create your account below, or <Anchor component={Link} href="/sign-in">sign in</Anchor> and open the link again.</Text>
        <RegisterForm invitationToken={token} />
      </AuthFrame>
    )
  }
  return (
    <AuthFrame title="Join an organisation">
      {accept.isSuccess
        ? <Alert color="green" role="status" title={`You joined ${accept.data.organisation.name}`}>Your role: {accept.data.role}.</Alert>
        : (
          <Stack>
            {accept.isError ? <ProblemAlert error={accept.error} title="Could not join" /> : null}
            <Button onClick={() => accept.mutate()} loading={accept.isPending}>Accept the invitation</Button>
          </Stack>
        )}
    </AuthFrame>
  )
}
