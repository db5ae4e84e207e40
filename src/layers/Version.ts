/**
 * The product's version, as the CLI prints it and traces name the service (test/unit/wiring.test.ts keeps it equal to
 * package.json's).
 */
export const productVersion = "0.1.0"
