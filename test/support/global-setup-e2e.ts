import globalSetup, { buildAppForE2e } from './global-setup';

/** The e2e tier's global setup: the database server of every tier, and the app built once. */
export default async function globalSetupE2e(): Promise<void> {
  await globalSetup();
  buildAppForE2e();
}
