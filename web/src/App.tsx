/**
 * The application: signed-out screens (sign in, register, confirm, accept an invitation) or the signed-in frame
 * with the screen of the current path, refused when the role does not allow it.
 */
import { Alert } from "@mantine/core"
import { Suspense } from "react"
import { Redirect, Route, Switch } from "wouter"
import { atLeast, useSession } from "./api/session.tsx"
import { Loading } from "./components/States.tsx"
import { Layout } from "./Layout.tsx"
import { routes } from "./routes.tsx"
import { AcceptInvitation } from "./screens/auth/AcceptInvitation.tsx"
import { Confirm } from "./screens/auth/Confirm.tsx"
import { Register } from "./screens/auth/Register.tsx"
import { SignIn } from "./screens/auth/SignIn.tsx"

const NotFound = () => (
  <Alert color="gray" title="Page not found" role="alert">There is nothing at this address.</Alert>
)

const Forbidden = () => (
  <Alert color="yellow" title="Not allowed" role="alert">Your role in this organisation cannot open this page.</Alert>
)

const home = (routes: ReadonlyArray<{ readonly path: string; readonly nav?: unknown }>) =>
  routes.find((r) => r.path === "/dashboard")?.path ?? routes.find((r) => r.nav !== undefined)?.path ?? "/account"

export const App = () => {
  const { state } = useSession()
  if (state.status === "loading") return <Loading label="Opening the Message Center…" />
  if (state.status === "signed-out") {
    return (
      <Switch>
        <Route path="/register" component={Register} />
        <Route path="/confirm" component={Confirm} />
        <Route path="/invitations/accept" component={AcceptInvitation} />
        <Route component={SignIn} />
      </Switch>
    )
  }
  const me = state.me
  return (
    <Layout>
      <Suspense fallback={<Loading />}>
        <Switch>
          <Route path="/invitations/accept" component={AcceptInvitation} />
          <Route path="/"><Redirect to={home(routes)} replace /></Route>
          <Route path="/sign-in"><Redirect to={home(routes)} replace /></Route>
          <Route path="/register"><Redirect to={home(routes)} replace /></Route>
          {routes.map((r) => (
            <Route key={r.path} path={r.path}>
              {(r.superadmin === true && !me.user.superadmin) || !atLeast(me.role, r.minRole ?? "viewer") ? <Forbidden /> : <r.screen />}
            </Route>
          ))}
          <Route component={NotFound} />
        </Switch>
      </Suspense>
    </Layout>
  )
}
