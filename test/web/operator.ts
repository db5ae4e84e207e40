/** The superadmin the browser tests' gateway is configured with. */
export const operator = { email: "olga.operator@example.test", password: "operator password for the web tests" } as const
